/*
** sweep_optuna.c: Optuna's own samplers for `fovea sweep` (TPE, CMA-ES,
** QMC, ...), through optuna_bridge.py run by Debian's python3 as a
** co-process: fovea asks it for trials and tells it their outcomes, one
** JSON line each way (the protocol is in the script).  The study is kept in
** Optuna's storage -- hydra.sweeper.storage, or DIR/optuna.db -- so that
** Optuna's tools read it and the tasks of a Slurm array share it.
**
** Which python: $FOVEA_PYTHON, else /usr/bin/python3 (Debian's, where
** python3-optuna installs), else python3 on the PATH.  Which script:
** $FOVEA_OPTUNA_BRIDGE, else the source tree's (a build tree), else the
** installed copy.
*/
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fovea/config.h"
#include "sweep_run.h"

extern char **environ;

struct sweep_optuna {
	pid_t pid;
	FILE *to, *from;
};

static const char *python_path(void)
{
	const char *env = getenv("FOVEA_PYTHON");
	if (env != NULL && env[0] != '\0')
		return env;
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

static const char *bridge_path(void)
{
	const char *env = getenv("FOVEA_OPTUNA_BRIDGE");
	if (env != NULL && env[0] != '\0')
		return env;
	return access(FV_OPTUNA_BRIDGE_SOURCE, R_OK) == 0 ? FV_OPTUNA_BRIDGE_SOURCE
	                                                  : FV_OPTUNA_BRIDGE_INSTALLED;
}

static int spawn(sweep_optuna *o)
{
	int in[2], out[2];
	if (pipe(in) != 0 || pipe(out) != 0)
		return cli_fail("sweep: cannot make pipes for Optuna: %s", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	int fds[] = {in[0], in[1], out[0], out[1]};
	for (int i = 0; i < 4; i++)
		posix_spawn_file_actions_addclose(&fa, fds[i]);
	char *argv[] = {(char *)python_path(), (char *)bridge_path(), NULL};
	int rc = posix_spawnp(&o->pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (rc != 0) {
		close(in[1]);
		close(out[0]);
		return cli_fail("sweep: cannot run %s %s: %s (Optuna's samplers need a python3 with "
		                "Debian's python3-optuna; FOVEA_PYTHON names another)", argv[0], argv[1],
		                strerror(rc));
	}
	o->to = fdopen(in[1], "w");
	o->from = fdopen(out[0], "r");
	if (o->to == NULL || o->from == NULL)
		return cli_fail("sweep: out of memory");
	return CLI_OK;
}

/* Send `req` (taken over) and read the reply into *out (NULL: discard). */
static int call(sweep_optuna *o, json_t *req, json_t **out)
{
	char *text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (text == NULL)
		return cli_fail("out of memory");
	int sent = fprintf(o->to, "%s\n", text) >= 0 && fflush(o->to) == 0;
	free(text);
	char *line = NULL;
	size_t cap = 0;
	json_t *r = sent && getline(&line, &cap, o->from) > 0 ? json_loads(line, 0, NULL) : NULL;
	free(line);
	if (r == NULL)
		return cli_fail("sweep: the Optuna bridge (%s %s) ended without an answer: is Debian's "
		                "python3-optuna installed? (tools/setup installs it)", python_path(),
		                bridge_path());
	if (!json_is_true(json_object_get(r, "ok"))) {
		int rc = cli_fail("sweep: Optuna: %s", json_string_value(json_object_get(r, "error")));
		json_decref(r);
		return rc;
	}
	if (out != NULL)
		*out = r;
	else
		json_decref(r);
	return CLI_OK;
}

static json_t *param_json(const sweep_param *p)
{
	static const char *const kinds[] = {"fixed", "choice", "range", "interval"};
	json_t *choices = json_array();
	for (size_t i = 0; i < p->n_choices; i++)
		json_array_append_new(choices, json_string(p->choices[i]));
	return json_pack("{s:s, s:s, s:o, s:f, s:f, s:f, s:b, s:b}", "key", p->key, "kind",
	                 kinds[p->kind], "choices", choices, "lo", p->lo, "hi", p->hi, "step",
	                 p->step, "integer", p->integer, "log", p->log);
}

static json_t *open_request(const sweep_study *s, int64_t task)
{
	json_t *space = json_array();
	for (size_t i = 0; i < s->space.n; i++)
		json_array_append_new(space, param_json(&s->space.params[i]));
	/* the tasks of a Slurm array each run a sampler: seeded alike, their
	** random start-up trials would repeat each other's */
	json_t *seed = s->seed_given ? json_integer((json_int_t)(s->seed + (uint64_t)task))
	                             : json_null();
	return json_pack("{s:s, s:s, s:s, s:s?, s:o, s:o}", "storage", s->storage, "study_name",
	                 s->name, "direction", s->maximize ? "maximize" : "minimize",
	                 "sampler_yaml", s->sampler_yaml, "seed", seed, "space", space);
}

int sweep_optuna_open(const sweep_study *s, int64_t task, sweep_optuna **out)
{
	sweep_optuna *o = calloc(1, sizeof *o);
	*out = o;
	if (o == NULL)
		return cli_fail("out of memory");
	o->pid = -1;
	/* a dead bridge is a failed write, reported, not a signal that kills fovea */
	signal(SIGPIPE, SIG_IGN);
	int rc = spawn(o);
	json_t *r = NULL;
	if (rc == CLI_OK)
		rc = call(o, open_request(s, task), &r);
	if (rc == CLI_OK && !s->args->quiet)
		printf("sweep: Optuna's %s, study '%s' in %s (%lld trials there before)\n",
		       json_string_value(json_object_get(r, "sampler")), s->name, s->storage,
		       (long long)json_integer_value(json_object_get(r, "n_existing")));
	json_decref(r);
	return rc;
}

int sweep_optuna_ask(sweep_optuna *o, size_t count, json_t **trials)
{
	json_t *r = NULL;
	int rc = call(o, json_pack("{s:s, s:I}", "op", "ask", "count", (json_int_t)count), &r);
	if (rc == CLI_OK) {
		*trials = json_incref(json_object_get(r, "trials"));
		json_decref(r);
	}
	return rc;
}

int sweep_optuna_tell(sweep_optuna *o, uint64_t number, double objective)
{
	json_t *req = isfinite(objective)
	                  ? json_pack("{s:s, s:I, s:f}", "op", "tell", "number", (json_int_t)number,
	                              "value", objective)
	                  : json_pack("{s:s, s:I, s:s}", "op", "tell", "number", (json_int_t)number,
	                              "state", "fail");
	return call(o, req, NULL);
}

int sweep_optuna_count(sweep_optuna *o, uint64_t *n)
{
	json_t *r = NULL;
	int rc = call(o, json_pack("{s:s}", "op", "count"), &r);
	if (rc == CLI_OK)
		*n = (uint64_t)json_integer_value(json_object_get(r, "n_trials"));
	json_decref(r);
	return rc;
}

void sweep_optuna_close(sweep_optuna *o)
{
	if (o == NULL)
		return;
	if (o->to != NULL)
		fclose(o->to); /* end of input: the bridge returns */
	if (o->from != NULL)
		fclose(o->from);
	if (o->pid > 0)
		waitpid(o->pid, NULL, 0);
	free(o);
}
