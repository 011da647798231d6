/* ops_conv3d.c: not written yet. */
typedef int fv_placeholder_ops_conv3d;
