/* config_compose.c: not written yet. */
typedef int fv_placeholder_config_compose;
