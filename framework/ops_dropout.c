/* ops_dropout.c: not written yet. */
typedef int fv_placeholder_ops_dropout;
