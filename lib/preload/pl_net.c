/* SPDX-License-Identifier: MIT */
/*
 * Name resolution and connections as CLIENT spans.
 *
 * getaddrinfo  span "getaddrinfo": dns.question.name, dns.answers (the
 *              addresses returned, at most 16), on failure error.type
 *              (host_not_found, no_recovery, or the EAI_* name) and
 *              status ERROR with gai_strerror() as description.
 * connect      span "connect" for AF_INET, AF_INET6 and AF_UNIX:
 *              network.peer.address, network.peer.port, network.type
 *              (ipv4/ipv6), network.transport (tcp/udp/unix),
 *              server.address (the name this thread last resolved to that
 *              address, else the address) and server.port; on failure
 *              error.type (ECONNREFUSED ...) and status ERROR.
 *              EINPROGRESS, EALREADY and EINTR are not failures: the
 *              connection goes on without us.
 *
 * Calls shorter than SPANRING_MIN_DURATION_US give no span. errno is
 * what the real call left.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "preload.h"

/* The last successful resolution of this thread, for server.address. */
#define DNS_CACHE_ADDRS 8
static PL_TLS struct {
	char name[256];
	uint8_t n;
	struct {
		uint8_t family;
		uint8_t addr[16];
	} a[DNS_CACHE_ADDRS];
} dns_cache;

static void dns_remember(const char *node, const struct addrinfo *res)
{
	size_t nl = strlen(node);
	if (nl >= sizeof(dns_cache.name))
		return;
	memcpy(dns_cache.name, node, nl + 1);
	dns_cache.n = 0;
	for (const struct addrinfo *ai = res; ai && dns_cache.n < DNS_CACHE_ADDRS; ai = ai->ai_next) {
		if (!ai->ai_addr)
			continue;
		if (ai->ai_family == AF_INET) {
			const struct sockaddr_in *s = (const void *)ai->ai_addr;
			dns_cache.a[dns_cache.n].family = AF_INET;
			memcpy(dns_cache.a[dns_cache.n++].addr, &s->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			const struct sockaddr_in6 *s = (const void *)ai->ai_addr;
			dns_cache.a[dns_cache.n].family = AF_INET6;
			memcpy(dns_cache.a[dns_cache.n++].addr, &s->sin6_addr, 16);
		}
	}
}

static const char *dns_name_of(int family, const void *addr)
{
	size_t len = family == AF_INET ? 4 : 16;
	for (unsigned i = 0; i < dns_cache.n; i++)
		if (dns_cache.a[i].family == family && memcmp(dns_cache.a[i].addr, addr, len) == 0)
			return dns_cache.name;
	return NULL;
}

static const char *gai_error_type(int r)
{
	switch (r) {
	case EAI_NONAME:
#ifdef EAI_NODATA
	case EAI_NODATA:
#endif
		return "host_not_found";
	case EAI_FAIL:
		return "no_recovery";
	case EAI_AGAIN:
		return "EAI_AGAIN";
	case EAI_BADFLAGS:
		return "EAI_BADFLAGS";
	case EAI_FAMILY:
		return "EAI_FAMILY";
	case EAI_SOCKTYPE:
		return "EAI_SOCKTYPE";
	case EAI_SERVICE:
		return "EAI_SERVICE";
	case EAI_MEMORY:
		return "EAI_MEMORY";
	case EAI_SYSTEM:
		return "EAI_SYSTEM";
	default:
		return "EAI_OTHER";
	}
}

PL_EXPORT int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
			  struct addrinfo **res)
{
	int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **) =
		PL_REAL(getaddrinfo);
	if (!real) {
		errno = ENOSYS;
		return EAI_SYSTEM;
	}
	if (!pl_tracing(PL_T_DNS))
		return real(node, service, hints, res);

	pl_incall++;
	uint64_t t0 = sr_clock_ns();
	int r = real(node, service, hints, res);
	int e = errno;
	uint64_t t1 = sr_clock_ns();
	pl_incall--;

	if (r == 0 && node && res)
		dns_remember(node, *res);
	if (t1 - t0 >= pl.cfg.min_duration_ns) {
		spanring_attr a[4];
		size_t n = 0;
		char addrs[16][INET6_ADDRSTRLEN];
		const char *items[16];
		size_t ni = 0;
		if (node)
			a[n++] = SPANRING_ATTR_STR("dns.question.name", node);
		if (r == 0 && res) {
			for (const struct addrinfo *ai = *res; ai && ni < 16; ai = ai->ai_next) {
				const void *src = NULL;
				if (ai->ai_family == AF_INET && ai->ai_addr)
					src = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
				else if (ai->ai_family == AF_INET6 && ai->ai_addr)
					src = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
				if (!src || !inet_ntop(ai->ai_family, src, addrs[ni], sizeof(addrs[ni])))
					continue;
				bool dup = false;
				for (size_t k = 0; k < ni && !dup; k++)
					dup = strcmp(items[k], addrs[ni]) == 0;
				if (!dup) {
					items[ni] = addrs[ni];
					ni++;
				}
			}
			if (ni)
				a[n++] = (spanring_attr){.key = "dns.answers",
							 .type = SPANRING_ATTR_STRING_ARRAY,
							 .v.array = {items, ni}};
		}
		const char *msg = NULL;
		if (r != 0) {
			a[n++] = SPANRING_ATTR_STR("error.type", gai_error_type(r));
			msg = gai_strerror(r);
		}
		pl_emit("getaddrinfo", t0, t1, a, n, r ? SPANRING_STATUS_ERROR : SPANRING_STATUS_UNSET,
			msg);
	}
	errno = e;
	return r;
}

/* The path of a Unix socket address; an abstract one as "@name". */
static void unix_peer_name(char *out, const struct sockaddr_un *s, socklen_t len)
{
	size_t pl_len = len > offsetof(struct sockaddr_un, sun_path)
				? len - offsetof(struct sockaddr_un, sun_path)
				: 0;
	if (pl_len > sizeof(s->sun_path))
		pl_len = sizeof(s->sun_path);
	if (pl_len && s->sun_path[0] == '\0') {
		out[0] = '@';
		memcpy(out + 1, s->sun_path + 1, pl_len - 1);
	} else {
		memcpy(out, s->sun_path, pl_len);
	}
	out[pl_len] = '\0';
}

/* The span of one connect() call that took [t0, t1] and returned r, errno e. */
static void connect_emit(int fd, const struct sockaddr *sa, socklen_t len, int r, int e,
			 uint64_t t0, uint64_t t1)
{
	spanring_attr a[8];
	size_t n = 0;
	char host[INET6_ADDRSTRLEN + 1] = "";
	char upath[sizeof(((struct sockaddr_un *)0)->sun_path) + 2];
	int port = -1;
	const char *name = NULL;
	int type = 0;
	socklen_t tl = sizeof(type);
	int keep = errno;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0)
		type = 0;
	errno = keep;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s = (const void *)sa;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof(host));
		port = ntohs(s->sin_port);
		name = dns_name_of(AF_INET, &s->sin_addr);
		a[n++] = SPANRING_ATTR_STR("network.type", "ipv4");
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s = (const void *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof(host));
		port = ntohs(s->sin6_port);
		name = dns_name_of(AF_INET6, &s->sin6_addr);
		a[n++] = SPANRING_ATTR_STR("network.type", "ipv6");
	} else if (sa->sa_family == AF_UNIX) {
		unix_peer_name(upath, (const void *)sa, len);
		a[n++] = SPANRING_ATTR_STR("network.peer.address", upath);
		a[n++] = SPANRING_ATTR_STR("network.transport", "unix");
	}
	if (host[0]) {
		a[n++] = SPANRING_ATTR_STR("network.peer.address", host);
		a[n++] = SPANRING_ATTR_INT("network.peer.port", port);
		a[n++] = SPANRING_ATTR_STR("network.transport", type == SOCK_DGRAM ? "udp" : "tcp");
		a[n++] = SPANRING_ATTR_STR("server.address", name ? name : host);
		a[n++] = SPANRING_ATTR_INT("server.port", port);
	}
	bool failed = r != 0 && e != EINPROGRESS && e != EALREADY && e != EINTR;
	const char *msg = NULL;
	if (failed) {
		const char *en = strerrorname_np(e);
		a[n++] = SPANRING_ATTR_STR("error.type", en ? en : "_OTHER");
		msg = strerrordesc_np(e);
	}
	pl_emit("connect", t0, t1, a, n, failed ? SPANRING_STATUS_ERROR : SPANRING_STATUS_UNSET, msg);
}

PL_EXPORT int connect(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
	int (*real)(int, const struct sockaddr *, socklen_t) = PL_REAL(connect);
	const struct sockaddr *sa = addr.__sockaddr__;
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	if (!pl_tracing(PL_T_CONNECT) || !sa || len < sizeof(sa_family_t) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6 && sa->sa_family != AF_UNIX))
		return real(fd, sa, len);

	pl_incall++;
	uint64_t t0 = sr_clock_ns();
	int r = real(fd, sa, len);
	int e = errno;
	uint64_t t1 = sr_clock_ns();
	pl_incall--;

	if (t1 - t0 >= pl.cfg.min_duration_ns)
		connect_emit(fd, sa, len, r, e, t0, t1);
	errno = e;
	return r;
}
