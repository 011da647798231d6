/* registry.c: not written yet. */
typedef int fv_placeholder_registry;
