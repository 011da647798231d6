/* ops_matmul.c: not written yet. */
typedef int fv_placeholder_ops_matmul;
