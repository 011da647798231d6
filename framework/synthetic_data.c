typedef int fv_placeholder_synth;
