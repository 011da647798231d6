/* config_yaml.c: not written yet. */
typedef int fv_placeholder_config_yaml;
