/* SPDX-License-Identifier: MIT */
/* spanring-agent: configuration, then the event loop (see docs/AGENT.md). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "log.h"
#include "sdnotify.h"

int main(int argc, char **argv)
{
	struct agent_config cfg;
	char err[1024];
	int action;
	agent_config_defaults(&cfg);
	if (agent_config_parse_args(&cfg, argc, argv, &action, err, sizeof(err)) ||
	    (action == AGENT_CFG_RUN || action == AGENT_CFG_CHECK
		     ? agent_config_finish(&cfg, err, sizeof(err))
		     : 0)) {
		char esc[4096];
		agent_text_escape(esc, sizeof(esc), err, strlen(err));
		fprintf(stderr, "spanring-agent: %s\n", esc);
		agent_config_free(&cfg);
		return 2;
	}
	if (action == AGENT_CFG_HELP) {
		agent_config_usage(stdout);
		agent_config_free(&cfg);
		return 0;
	}
	if (action == AGENT_CFG_VERSION) {
		printf("spanring-agent %s (ring ABI %u.%u)\n", AGENT_VERSION, SPANRING_ABI_MAJOR,
		       SPANRING_ABI_MINOR);
		agent_config_free(&cfg);
		return 0;
	}
	if (action == AGENT_CFG_CHECK) {
		printf("spanring-agent: configuration OK (socket %s)\n", cfg.socket_path);
		agent_config_free(&cfg);
		return 0;
	}
	agent_log_set_level(cfg.log_level);
	/* Peers that go away must not kill us; writes report EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);

	static struct agent ag;
	int rc = agent_init(&ag, &cfg, true);
	if (rc) {
		log_error("cannot start: %s", ag.err[0] ? ag.err : strerror(-rc));
		agent_config_free(&cfg);
		return 1;
	}
	rc = agent_exporters_from_config(&ag);
	if (rc) {
		log_error("cannot start the exporters: %s", ag.err[0] ? ag.err : strerror(-rc));
		agent_fini(&ag);
		agent_config_free(&cfg);
		return 1;
	}
	char names[512] = "";
	for (size_t i = 0; i < ag.n_exp; i++) /* every instance, named or not */
		snprintf(names + strlen(names), sizeof(names) - strlen(names), " %s",
			 ag.exp[i]->name);
	log_info("spanring-agent %s started (pid %d): exporters%s, batch %llu bytes / %lluus, "
		 "poll %llu..%lluus%s",
		 AGENT_VERSION, (int)getpid(), names,
		 (unsigned long long)cfg.batch_max_bytes, (unsigned long long)cfg.batch_max_age_us,
		 (unsigned long long)cfg.poll_min_us, (unsigned long long)cfg.poll_max_us,
		 cfg.zc_check ? ", zero-copy check on" : "");
	ag.ready = true; /* /readyz: listening, every exporter constructed */
	sd_notify_ready(&ag);
	rc = agent_run(&ag);
	sd_notify_stopping(&ag);
	agent_fini(&ag);
	agent_config_free(&cfg);
	return rc;
}
