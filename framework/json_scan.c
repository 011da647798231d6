/* json_scan.c: not written yet. */
typedef int fv_placeholder_json_scan;
