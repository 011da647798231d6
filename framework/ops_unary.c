/* ops_unary.c: not written yet. */
typedef int fv_placeholder_ops_unary;
