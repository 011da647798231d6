/* ops_pool3d.c: not written yet. */
typedef int fv_placeholder_ops_pool3d;
