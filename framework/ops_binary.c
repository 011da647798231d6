/* ops_binary.c: not written yet. */
typedef int fv_placeholder_ops_binary;
