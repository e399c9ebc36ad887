#include "backend/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/parse.h"

static int split(const char *spec, char *host, size_t hostlen, const char **port)
{
	const char *colon;
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		if ((size_t)(close - spec - 1) >= hostlen)
			return -EINVAL;
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		*port = close + 2;
		return 0;
	}
	colon = strrchr(spec, ':');
	if (!colon) {
		snprintf(host, hostlen, "127.0.0.1");
		*port = spec;
		return 0;
	}
	if ((size_t)(colon - spec) >= hostlen)
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	if (!host[0])
		snprintf(host, hostlen, "127.0.0.1");
	*port = colon + 1;
	return 0;
}

/* The port and host of a spec; 0, or -EINVAL with a reason in err. */
static int parse_spec(const char *spec, char *host, size_t hostlen, char portstr[8], char *err,
		      size_t errlen)
{
	const char *port;
	uint64_t portnum;
	if (split(spec, host, hostlen, &port) || parse_uint(port, 65535, &portnum)) {
		snprintf(err, errlen, "'%s' is not [address:]port", spec);
		return -EINVAL;
	}
	snprintf(portstr, 8, "%u", (unsigned)portnum);
	return 0;
}

static int resolve(const char *host, const char *portstr, struct addrinfo **res, char *err,
		   size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	*res = NULL;
	int g = getaddrinfo(host, portstr, &hints, res);
	if (g) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(g));
		return -EINVAL;
	}
	return 0;
}

int tcp_check_spec(const char *spec, char *err, size_t errlen)
{
	char host[256], portstr[8];
	struct addrinfo *res;
	int r = parse_spec(spec, host, sizeof(host), portstr, err, errlen);
	if (!r && !(r = resolve(host, portstr, &res, err, errlen)))
		freeaddrinfo(res);
	return r;
}

void tcp_describe_bound(int fd, const char *host, unsigned port, char *where, size_t wherelen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			if (inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr))) {
				snprintf(where, wherelen, "%s:%u", addr, ntohs(sin->sin_port));
				return;
			}
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			if (inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr))) {
				snprintf(where, wherelen, "[%s]:%u", addr, ntohs(sin6->sin6_port));
				return;
			}
		}
	}
	/* Not known from the socket: what was asked for. */
	snprintf(where, wherelen, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

int tcp_listen_spec(const char *spec, char *where, size_t wherelen, char *err, size_t errlen)
{
	char host[256], portstr[8];
	struct addrinfo *res;
	int r = parse_spec(spec, host, sizeof(host), portstr, err, errlen);
	if (r || (r = resolve(host, portstr, &res, err, errlen)))
		return r;
	int fd = -1, e = EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			e = errno;
			continue;
		}
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4) == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(err, errlen, "%s:%s: %s", host, portstr, strerror(e));
		return -e;
	}
	tcp_describe_bound(fd, host, (unsigned)strtoul(portstr, NULL, 10), where, wherelen);
	return fd;
}
