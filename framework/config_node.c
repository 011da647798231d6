/* config_node.c: not written yet. */
typedef int fv_placeholder_config_node;
