/* safetensors_read.c: not written yet. */
typedef int fv_placeholder_safetensors_read;
