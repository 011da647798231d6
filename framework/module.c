/* module.c: not written yet. */
typedef int fv_placeholder_module;
