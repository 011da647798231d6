/* ops_conv3d_separable.c: not written yet. */
typedef int fv_placeholder_ops_conv3d_separable;
