/* ops_shape.c: not written yet. */
typedef int fv_placeholder_ops_shape;
