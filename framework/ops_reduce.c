/* ops_reduce.c: not written yet. */
typedef int fv_placeholder_ops_reduce;
