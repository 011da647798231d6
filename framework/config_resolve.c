/* config_resolve.c: not written yet. */
typedef int fv_placeholder_config_resolve;
