/* ops_batchnorm.c: not written yet. */
typedef int fv_placeholder_ops_batchnorm;
