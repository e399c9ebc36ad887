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

int tcp_listen_spec(const char *spec, char *where, size_t wherelen, char *err, size_t errlen)
{
	char host[256];
	const char *port;
	uint64_t portnum;
	if (split(spec, host, sizeof(host), &port) || parse_uint(port, 65535, &portnum)) {
		snprintf(err, errlen, "'%s' is not [address:]port", spec);
		return -EINVAL;
	}
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)portnum);
	int g = getaddrinfo(host, portstr, &hints, &res);
	if (g) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(g));
		return -EINVAL;
	}
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
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned bound = (unsigned)portnum;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
			bound = ntohs(sin->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
			bound = ntohs(sin6->sin6_port);
		}
	}
	snprintf(where, wherelen, ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr, bound);
	return fd;
}
