/*
 * httpraw: sends one HTTP request exactly as given (no normalization of
 * its target, which may hold any byte as \xNN) to 127.0.0.1:PORT,
 * optionally signed as enlace/httpauth.h says, and prints the answer's
 * status code, or its body with --body.
 *
 *   httpraw PORT TARGET [--key DIR --origin ORIGIN] [--method M]
 *           [--skew SECONDS] [--auth VALUE] [--body] [--print-auth]
 *
 * Exit 0 when an answer came, 1 when none did within 10 s, 2 on misuse.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "enlace/httpauth.h"
#include "enlace/keys.h"

#define ANSWER_MAX ((size_t)32 << 20)

/* TARGET with \xNN decoded into out; its length. */
static size_t
decode(const char *s, char *out, size_t cap)
{
	size_t n = 0;
	unsigned v;

	while (*s != '\0' && n + 1 < cap) {
		if (s[0] == '\\' && s[1] == 'x' && sscanf(s + 2, "%2x", &v) == 1) {
			out[n++] = (char)v;
			s += 4;
		} else {
			out[n++] = *s++;
		}
	}
	out[n] = '\0';
	return n;
}

static int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *key = NULL, *origin = NULL, *method = "GET", *auth_raw = NULL;
	char target[1024], auth[ENL_HTTP_AUTH_MAX + 1] = "", why[600], head[2048];
	struct enl_identity *ident = NULL;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {10, 0};
	bool body = false, print_auth = false;
	long skew = 0;
	size_t tlen, got = 0;
	char *answer;
	int fd, status;

	if (argc < 3)
		return fprintf(stderr, "usage: httpraw PORT TARGET [options]\n"), 2;
	tlen = decode(argv[2], target, sizeof(target));
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--body") == 0)
			body = true;
		else if (strcmp(argv[i], "--print-auth") == 0)
			print_auth = true;
		else if (i + 1 < argc && strcmp(argv[i], "--key") == 0)
			key = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--origin") == 0)
			origin = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--method") == 0)
			method = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--skew") == 0)
			skew = strtol(argv[++i], NULL, 10);
		else if (i + 1 < argc && strcmp(argv[i], "--auth") == 0)
			auth_raw = argv[++i];
		else
			return fprintf(stderr, "httpraw: bad option %s\n", argv[i]), 2;
	}
	if (enl_init() != ENL_OK)
		return 2;
	if (key != NULL) {
		if (origin == NULL ||
		    enl_keydir_load(key, NULL, "", &ident, why, sizeof(why)) != ENL_OK ||
		    enl_http_auth_make(ident, origin, method, target, tlen,
				       (int64_t)time(NULL) + skew, auth) != ENL_OK)
			return fprintf(stderr, "httpraw: cannot sign (%s)\n", why), 2;
		enl_identity_free(ident);
	}
	if (print_auth)
		return puts(auth) == EOF;
	if (auth_raw != NULL)
		snprintf(auth, sizeof(auth), "%s", auth_raw);
	sa.sin_port = htons((uint16_t)strtoul(argv[1], NULL, 10));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		return perror("httpraw: connect"), 1;
	int hl = snprintf(head, sizeof(head), "%s ", method);
	if (send_all(fd, head, (size_t)hl) != 0 || send_all(fd, target, tlen) != 0)
		return perror("httpraw: send"), 1;
	hl = snprintf(head, sizeof(head), " HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s"
		      "Connection: close\r\n\r\n", auth[0] ? "Authorization: " : "", auth,
		      auth[0] ? "\r\n" : "");
	if (send_all(fd, head, (size_t)hl) != 0)
		return perror("httpraw: send"), 1;
	if ((answer = malloc(ANSWER_MAX + 1)) == NULL)
		return 2;
	for (ssize_t n; got < ANSWER_MAX && (n = recv(fd, answer + got, ANSWER_MAX - got, 0)) != 0;) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fprintf(stderr, "httpraw: no answer: %s\n", strerror(errno)), 1;
		got += (size_t)n;
	}
	close(fd);
	answer[got] = '\0';
	if (sscanf(answer, "HTTP/1.%*d %d", &status) != 1)
		return fprintf(stderr, "httpraw: no status line\n"), 1;
	if (!body) {
		char *end = strstr(answer, "\r\n\r\n");
		if (end != NULL)
			*end = '\0';
		printf("%d\n", status);
		fprintf(stderr, "%s\n", answer);
	} else {
		char *b = strstr(answer, "\r\n\r\n");
		if (b != NULL)
			fwrite(b + 4, 1, got - (size_t)(b + 4 - answer), stdout);
	}
	free(answer);
	return 0;
}
