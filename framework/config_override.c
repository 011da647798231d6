/* config_override.c: not written yet. */
typedef int fv_placeholder_config_override;
