/* A listening TCP socket from a "[address:]port" spec, for the serial
 * ports' tcp backend and the GDB stub. */
#pragma once
#include <stddef.h>

/* spec: "port", "address:port", "[ipv6]:port" or ":port"; the address
 * defaults to 127.0.0.1 (a debugger or console port is not for the
 * network unless asked: "0.0.0.0:port" or "[::]:port"). Port 0 picks a
 * free one. Returns a non-blocking, close-on-exec listening socket and
 * the bound "address:port" in where, or -errno with a one-line reason. */
int tcp_listen_spec(const char *spec, char *where, size_t wherelen, char *err, size_t errlen);

/* Check a spec as tcp_listen_spec would (the address resolved), without
 * creating a socket. 0, or -errno with a one-line reason. */
int tcp_check_spec(const char *spec, char *err, size_t errlen);

/* "address:port" (or "[v6address]:port") that socket fd is bound to; if
 * the socket cannot say (getsockname fails), host and port as asked. */
void tcp_describe_bound(int fd, const char *host, unsigned port, char *where, size_t wherelen);
