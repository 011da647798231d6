/* ops_grid_sample.c: not written yet. */
typedef int fv_placeholder_ops_grid_sample;
