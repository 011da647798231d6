/*
** cmd_create_data.c: `fovea create-data DIR`, a synthetic data set in
** openretina's HDF5 layout with a known ground truth (see
** framework/synthetic_data.c for the model of the neurons).
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fovea/data.h"

#define MAX_SESSIONS 64

static bool parse_int(const char *text, int64_t *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0')
		return false;
	*out = v;
	return true;
}

static bool parse_double(const char *text, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0')
		return false;
	*out = v;
	return true;
}

/* "12,18,24" */
static bool parse_list(const char *text, int64_t *out, size_t max, size_t *n)
{
	char buf[512];
	if (strlen(text) >= sizeof buf)
		return false;
	strcpy(buf, text);
	*n = 0;
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n == max || !parse_int(tok, &out[*n]))
			return false;
		(*n)++;
	}
	return *n > 0;
}

enum layout { LAYOUT_ANY, LAYOUT_FOVEA, LAYOUT_OPENRETINA };
static const char *const layout_names[] = {"", "fovea", "openretina"};

/* The command line, before it becomes fv_synthetic_options or
** fv_openretina_data_options. */
typedef struct args {
	fv_synthetic_options o;
	fv_openretina_data_options ro;
	enum layout layout;
	const char *dir;
	int64_t seed, sessions, train_stimuli, trials;
	int64_t neurons[MAX_SESSIONS];
	size_t n_neurons;
	int64_t num_stimuli, num_sessions;
	bool sessions_given;
	/* the first option given that only one layout has, for the check */
	const char *fovea_only, *openretina_only;
} args;

typedef struct int_flag {
	const char *name;
	int64_t *value;
	enum layout layout; /* the layout it belongs to, or LAYOUT_ANY */
} int_flag;

/* Note an option of one layout, to check it against --layout later. */
static void note_layout(args *a, enum layout layout, const char *name)
{
	if (layout == LAYOUT_FOVEA && a->fovea_only == NULL)
		a->fovea_only = name;
	if (layout == LAYOUT_OPENRETINA && a->openretina_only == NULL)
		a->openretina_only = name;
}

static int parse_layout(args *a, const char *value)
{
	for (int l = LAYOUT_FOVEA; l <= LAYOUT_OPENRETINA; l++) {
		if (strcmp(value, layout_names[l]) == 0) {
			a->layout = (enum layout)l;
			return CLI_OK;
		}
	}
	return cli_usage_error(&cli_cmd_create_data,
	                       "--layout: expected 'fovea' or 'openretina', got '%s'", value);
}

/* One "--name value" or "--name=value"; CLI_OK or a usage error. */
static int parse_option(args *a, const char *name, const char *value)
{
	const int_flag ints[] = {
		{"--seed", &a->seed, LAYOUT_ANY},
		{"--sessions", &a->sessions, LAYOUT_FOVEA},
		{"--frames", &a->o.train_frames, LAYOUT_FOVEA},
		{"--height", &a->o.height, LAYOUT_FOVEA},
		{"--width", &a->o.width, LAYOUT_FOVEA},
		{"--channels", &a->o.channels, LAYOUT_FOVEA},
		{"--train-stimuli", &a->train_stimuli, LAYOUT_FOVEA},
		{"--test-frames", &a->o.test_frames, LAYOUT_FOVEA},
		{"--trials", &a->trials, LAYOUT_FOVEA},
		{"--filter-length", &a->o.filter_length, LAYOUT_FOVEA},
		{"--num-colors", &a->ro.num_colors, LAYOUT_OPENRETINA},
		{"--num-stimuli", &a->num_stimuli, LAYOUT_OPENRETINA},
		{"--num-sessions", &a->num_sessions, LAYOUT_OPENRETINA},
		{"--clip-length", &a->ro.clip_length, LAYOUT_OPENRETINA},
	};
	for (size_t k = 0; k < sizeof ints / sizeof ints[0]; k++) {
		if (strcmp(name, ints[k].name) != 0)
			continue;
		if (!parse_int(value, ints[k].value))
			return cli_usage_error(&cli_cmd_create_data, "%s: expected an integer, got '%s'", name,
			                       value);
		a->sessions_given = a->sessions_given || strcmp(name, "--sessions") == 0;
		note_layout(a, ints[k].layout, ints[k].name);
		return CLI_OK;
	}
	if (strcmp(name, "--layout") == 0)
		return parse_layout(a, value);
	if (strcmp(name, "--neurons") == 0) {
		if (!parse_list(value, a->neurons, MAX_SESSIONS, &a->n_neurons))
			return cli_usage_error(&cli_cmd_create_data,
			                       "--neurons: expected comma-separated integers (at most %d), "
			                       "got '%s'",
			                       MAX_SESSIONS, value);
		note_layout(a, LAYOUT_FOVEA, "--neurons");
		return CLI_OK;
	}
	if (strcmp(name, "--rate") == 0) {
		if (!parse_double(value, &a->o.rate))
			return cli_usage_error(&cli_cmd_create_data, "--rate: expected a number, got '%s'",
			                       value);
		note_layout(a, LAYOUT_FOVEA, "--rate");
		return CLI_OK;
	}
	return cli_usage_error(&cli_cmd_create_data, "unknown option '%s'", name);
}

/* Options of the other layout are a mistake, not something to ignore. */
static int check_layout(args *a)
{
	if (a->layout == LAYOUT_ANY)
		a->layout = LAYOUT_FOVEA;
	const char *wrong = a->layout == LAYOUT_FOVEA ? a->openretina_only : a->fovea_only;
	if (wrong == NULL)
		return CLI_OK;
	return cli_usage_error(&cli_cmd_create_data, "%s does not apply to --layout %s%s", wrong,
	                       layout_names[a->layout],
	                       a->layout == LAYOUT_FOVEA ? " (it is an option of --layout openretina)"
	                                                 : "");
}

static int parse_args(int argc, char **argv, args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value;
		if (arg[0] != '-' || arg[1] != '-') {
			if (a->dir != NULL)
				return cli_usage_error(&cli_cmd_create_data,
				                       "expected one directory, got '%s' and '%s'", a->dir, arg);
			a->dir = arg;
			continue;
		}
		char name[64];
		const char *eq = strchr(arg, '=');
		size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		if (len >= sizeof name)
			return cli_usage_error(&cli_cmd_create_data, "unknown option '%s'", arg);
		memcpy(name, arg, len);
		name[len] = '\0';
		if (eq != NULL)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else
			return cli_usage_error(&cli_cmd_create_data, "option %s needs a value", name);
		int rc = parse_option(a, name, value);
		if (rc != CLI_OK)
			return rc;
	}
	if (a->dir == NULL)
		return cli_usage_error(&cli_cmd_create_data, "expected a directory");
	int rc = check_layout(a);
	if (rc != CLI_OK)
		return rc;
	if (a->layout == LAYOUT_OPENRETINA &&
	    (a->num_sessions < 1 || a->num_sessions > MAX_SESSIONS || a->num_stimuli < 1 ||
	     a->num_stimuli > 1000 || a->ro.num_colors < 1 || a->ro.clip_length < 1))
		return cli_usage_error(&cli_cmd_create_data,
		                       "out of range: --num-sessions 1..%d, --num-stimuli 1..1000, "
		                       "--num-colors and --clip-length at least 1",
		                       MAX_SESSIONS);
	if (a->seed < 0 || a->sessions < 1 || a->sessions > MAX_SESSIONS || a->train_stimuli < 1 ||
	    a->train_stimuli > 1000 || a->trials < 1 || a->trials > 100000)
		return cli_usage_error(&cli_cmd_create_data,
		                       "out of range: --seed must be >= 0, --sessions 1..%d, "
		                       "--train-stimuli 1..1000, --trials 1..100000",
		                       MAX_SESSIONS);
	return CLI_OK;
}

static void print_summary(const args *a)
{
	const fv_synthetic_options *o = &a->o;
	printf("wrote %s: %d sessions (", a->dir, o->n_sessions);
	for (int s = 0; s < o->n_sessions; s++)
		printf("%s%lld", s ? ", " : "",
		       (long long)(a->n_neurons > 0 ? a->neurons[(size_t)s % a->n_neurons] : 12 + 6 * s));
	printf(" neurons), %d training stimuli of %lld frames, test stimulus 'test' of %lld frames x "
	       "%d trials, %lld x %lld x %lld pixels (channels x height x width); ground truth in "
	       "%s/ground_truth.json\n",
	       o->n_train_stimuli, (long long)o->train_frames, (long long)o->test_frames,
	       o->n_test_trials, (long long)o->channels, (long long)o->height, (long long)o->width,
	       a->dir);
}

/* openretina's create-data: the same files and shapes as its own. */
static int run_openretina(args *a)
{
	a->ro.seed = (uint64_t)a->seed;
	a->ro.num_stimuli = (int)a->num_stimuli;
	a->ro.num_sessions = (int)a->num_sessions;
	int64_t neurons[MAX_SESSIONS];
	if (fv_openretina_data_write(a->dir, &a->ro, neurons) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	const fv_openretina_data_options *o = &a->ro;
	printf("wrote %s in openretina's create-data layout: %d stimuli (random_noise_0 .. "
	       "random_noise_%d, float64, %lld x (70..%d) * %lld frames x 16 x 8), %d sessions (",
	       a->dir, o->num_stimuli, o->num_stimuli - 1, (long long)o->num_colors,
	       69 + o->num_stimuli, (long long)o->clip_length, o->num_sessions);
	for (int k = 0; k < o->num_sessions; k++)
		printf("%s%lld", k ? ", " : "", (long long)neurons[k]);
	printf(" neurons)\n");
	return CLI_OK;
}

static int run_create_data(int argc, char **argv)
{
	args a = {0};
	fv_synthetic_options_default(&a.o);
	fv_openretina_data_options_default(&a.ro);
	a.seed = (int64_t)a.o.seed;
	a.sessions = a.o.n_sessions;
	a.train_stimuli = a.o.n_train_stimuli;
	a.trials = a.o.n_test_trials;
	a.num_stimuli = a.ro.num_stimuli;
	a.num_sessions = a.ro.num_sessions;
	int rc = parse_args(argc, argv, &a);
	if (rc != CLI_OK)
		return rc;
	if (a.layout == LAYOUT_OPENRETINA)
		return run_openretina(&a);
	/* --neurons a,b,c alone also says how many sessions */
	if (a.n_neurons > 0 && !a.sessions_given)
		a.sessions = (int64_t)a.n_neurons;
	a.o.seed = (uint64_t)a.seed;
	a.o.n_sessions = (int)a.sessions;
	a.o.n_train_stimuli = (int)a.train_stimuli;
	a.o.n_test_trials = (int)a.trials;
	if (a.n_neurons > 0) {
		a.o.n_neurons = a.neurons;
		a.o.n_n_neurons = a.n_neurons;
	}
	if (fv_synthetic_write(a.dir, &a.o) != FV_OK)
		return cli_fail("%s", fv_errmsg());
	print_summary(&a);
	return CLI_OK;
}

const cli_cmd cli_cmd_create_data = {
	.name = "create-data",
	.summary = "write a synthetic data set with a known ground truth",
	.usage = "fovea create-data DIR [--seed N] [--sessions K] [--neurons a,b,...] [--frames T]\n"
	         "                 [--height H] [--width W] [--channels C] [--train-stimuli K]\n"
	         "                 [--test-frames T] [--trials R] [--filter-length L] [--rate R]\n"
	         "fovea create-data DIR --layout openretina [--seed N] [--num-colors C]\n"
	         "                 [--num-stimuli K] [--num-sessions S] [--clip-length L]\n"
	         "\n"
	         "Writes DIR in openretina's HDF5 layout: DIR/stimuli/train_<i>.npy and test.npy\n"
	         "(white noise, float32, channels x time x height x width), one\n"
	         "DIR/session_<k>.hdf5 per session (responses_<stimulus> as neurons x time,\n"
	         "by_trial_test as trials x neurons x time, session_info/channel and sign) and\n"
	         "DIR/ground_truth.json.  Each neuron has a Gaussian receptive field (centre,\n"
	         "size, ON/OFF sign, one colour channel), a biphasic temporal filter, a softplus\n"
	         "output and Poisson spikes.\n"
	         "\n"
	         "  --seed N            random seed (1)\n"
	         "  --sessions K        number of sessions (3, or the length of --neurons)\n"
	         "  --neurons a,b,...   neurons per session, cycled (12, 18, 24, ...)\n"
	         "  --frames T          frames per training stimulus (1500)\n"
	         "  --train-stimuli K   number of training stimuli (2)\n"
	         "  --test-frames T     frames of the test stimulus (300)\n"
	         "  --trials R          repeated trials of the test stimulus (10)\n"
	         "  --height H, --width W, --channels C   stimulus size (18, 16, 2)\n"
	         "  --filter-length L   temporal filter taps (12)\n"
	         "  --rate R            mean spikes per frame (1.0)\n"
	         "\n"
	         "Train on it with data_io.test_names=[test] (configs/example.yaml does).\n"
	         "\n"
	         "--layout openretina writes what openretina's `openretina create-data` writes,\n"
	         "with its options and defaults: DIR/stimuli/random_noise_<i>.npy (float64\n"
	         "white noise, C x (70 + i) * L frames x 16 x 8), one DIR/session_<k>.hdf5 per\n"
	         "session (10..29 neurons; responses_random_noise_<i> float64 neurons x time,\n"
	         "session_info/celltypes int64), no ground truth.  A neuron sums the stimulus\n"
	         "over a small square on one colour, smoothed over 3..6 frames, scaled, plus a\n"
	         "bias.  configs/hdf5_core_readout.yaml trains on it as is (test stimuli\n"
	         "random_noise_2 and _3), e.g. with data_io.color_channels=C.\n"
	         "\n"
	         "  --num-colors C      colour channels (3)\n"
	         "  --num-stimuli K     stimuli random_noise_0 .. K-1 (4)\n"
	         "  --num-sessions S    sessions (2)\n"
	         "  --clip-length L     frames per clip (75)\n",
	.run = run_create_data,
};
