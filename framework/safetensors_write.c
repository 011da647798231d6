/* safetensors_write.c: not written yet. */
typedef int fv_placeholder_safetensors_write;
