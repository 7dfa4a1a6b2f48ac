/* SPDX-License-Identifier: MIT */
/* The OTLP exporters' resolver and connector (otlp_base.h). */
#include "otlp_base.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atomics.h"
#include "log.h"

/*
 * getaddrinfo() can block for seconds, so a name that is not a numeric
 * address is resolved on a short-lived helper thread. The job is shared by
 * the thread and the loop (two references); whoever drops the last one
 * frees it, so a job abandoned by the loop (timeout, shutdown) finishes on
 * its own. The thread signals completion through the job's eventfd.
 */
struct dns_job {
	uint32_t refs;
	uint32_t done;          /* rc and res are set */
	int efd;
	int rc;
	struct addrinfo *res;
	char host[256];
	char port[8];
};

static void dns_job_put(struct dns_job *j)
{
	/* The last one frees; the decrement orders each side's writes to
	 * the job before the other side's free. */
	if (!sr_dec_zero_32(&j->refs))
		return;
	close(j->efd);
	if (j->res)
		freeaddrinfo(j->res);
	free(j);
}

static void *dns_thread(void *arg)
{
	struct dns_job *j = arg;
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(j->host, j->port, &hints, &res);
	j->rc = rc;
	j->res = rc == 0 ? res : NULL;
	/* Publish rc and res; pairs with the acquire in dns_on_done. */
	sr_store_release_32(&j->done, 1);
	uint64_t one = 1;
	ssize_t w = write(j->efd, &one, sizeof(one));
	(void)w;
	dns_job_put(j);
	return NULL;
}

static void dns_cancel(struct otlp_base *ob)
{
	if (!ob->dns)
		return;
	loop_del(ob->e.host->loop, &ob->dns_w);
	ob->dns_w.fd = -1;
	dns_job_put(ob->dns);
	ob->dns = NULL;
}

static void dns_on_done(struct loop_watch *w, uint32_t events)
{
	struct otlp_base *ob = container_of(w, struct otlp_base, dns_w);
	struct dns_job *j = ob->dns;
	uint64_t v;
	(void)events;
	/* done pairs with the release in dns_thread, which stores it before
	 * it writes the eventfd: once the read succeeds, done is 1. */
	if (read(j->efd, &v, sizeof(v)) != sizeof(v) || !sr_load_acquire_32(&j->done))
		return;
	int rc = j->rc;
	struct addrinfo *res = j->res;
	j->res = NULL;
	char host[256];
	snprintf(host, sizeof(host), "%s", j->host);
	dns_cancel(ob);
	if (ob->ai)
		freeaddrinfo(ob->ai);
	ob->ai = ob->ai_next = res;
	if (rc) {
		ob->c.dns_failures++;
		AGENT_LOG_RL_OF(&ob->log_rl, AGENT_LOG_WARN,
				"exporter %s: cannot resolve '%s': %s", ob->e.name, host,
				gai_strerror(rc));
	}
	ob->on_resolved(ob, rc ? -EHOSTUNREACH : 0);
}

/* What ob_resolve did, or -errno. */
enum { RESOLVE_PENDING = 0, /* on the helper thread: on_resolved follows */
       RESOLVE_DONE = 1 };  /* a numeric address, resolved at once */

static int ob_resolve(struct otlp_base *ob)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", ob->conf.u.port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	if (getaddrinfo(ob->conf.u.host, port, &hints, &res) == 0) {
		if (ob->ai)
			freeaddrinfo(ob->ai);
		ob->ai = ob->ai_next = res;
		return RESOLVE_DONE;
	}
	if (ob->dns)
		return RESOLVE_PENDING;
	struct dns_job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->refs = 2;
	snprintf(j->host, sizeof(j->host), "%s", ob->conf.u.host);
	snprintf(j->port, sizeof(j->port), "%s", port);
	j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (j->efd < 0) {
		free(j);
		return -errno;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	pthread_t th;
	int rc = pthread_create(&th, &attr, dns_thread, j);
	pthread_attr_destroy(&attr);
	if (rc) {
		close(j->efd);
		free(j);
		return -rc;
	}
	ob->dns = j;
	ob->dns_w.fd = j->efd;
	ob->dns_w.fn = dns_on_done;
	rc = loop_add(ob->e.host->loop, &ob->dns_w, EPOLLIN);
	if (rc) {
		ob->dns_w.fd = -1;
		dns_job_put(j); /* the thread keeps its reference */
		ob->dns = NULL;
		return rc;
	}
	return RESOLVE_PENDING;
}

void otlp_base_cancel_resolve(struct otlp_base *ob)
{
	dns_cancel(ob);
}

void otlp_base_resolve(struct otlp_base *ob)
{
	int rc = ob_resolve(ob);
	if (rc == RESOLVE_PENDING)
		return;
	ob->on_resolved(ob, rc == RESOLVE_DONE ? 0 : rc);
}

int otlp_base_connect_next(struct otlp_base *ob, bool *done)
{
	int err = -ENOENT;
	*done = false;
	while (ob->ai_next) {
		struct addrinfo *ai = ob->ai_next;
		ob->ai_next = ai->ai_next;
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		int one = 1;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (ob->conf.sndbuf)
			(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &ob->conf.sndbuf,
					 sizeof(ob->conf.sndbuf));
		ob->c.connects++;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			*done = true;
			return fd;
		}
		if (errno == EINPROGRESS)
			return fd;
		err = -errno;
		close(fd);
	}
	return err;
}

