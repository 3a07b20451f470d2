/*
 * The agent's control socket, between `enlace` and `enlace-agent`: a UNIX
 * stream socket (mode 0600, so only the agent's user reaches it), one
 * request per connection, one frame each way: a 4-byte big-endian length,
 * then that many bytes (a CtlRequest, then a CtlResponse).
 *
 * Not nng: its ipc listener (1.5.2, Debian 12's) stops accepting for good
 * once one client disconnects before its handshake (nng issue 1518), so a
 * health probe or a command killed at the wrong moment would cut every
 * analyst off the agent.
 */
#ifndef ENLACE_CONTROL_H
#define ENLACE_CONTROL_H

#include <stddef.h>
#include <stdint.h>

/*
 * Makes the listening socket at `path` (mode 0600; a file left there is
 * replaced, so check first that no agent answers on it), non-blocking, for
 * accept4 from several threads. 0, or -1 with errno set.
 */
int control_listen(const char *path, int *fd);

/*
 * Connects to the agent at `path`; every later read and write on *fd
 * waits at most timeout_ms. 0, or -1 with errno set (ENOENT, ECONNREFUSED:
 * no agent).
 */
int control_dial(const char *path, int timeout_ms, int *fd);

/* Sets how long a read and a write on fd may wait. */
void control_timeouts(int fd, int read_ms, int write_ms);

/*
 * Reads one frame: its body, malloc'd, into *out. ENL_E_IO
 * (errno: EAGAIN if nothing came in time), ENL_E_MALFORMED (the peer
 * closed within the frame), ENL_E_TOO_LARGE (over `max`, before anything
 * is allocated), ENL_E_NOMEM.
 */
int control_read(int fd, size_t max, uint8_t **out, size_t *len);
/*
 * One frame holding message m, packed straight into the socket: a 50 MiB
 * attachment is sent from where it lies, not copied into a packed buffer
 * first. ENL_OK, ENL_E_IO (errno tells why; EAGAIN: the peer does not
 * read), ENL_E_TOO_LARGE over 4 GiB, ENL_E_NOMEM.
 */
struct ProtobufCMessage;
int control_write_message(int fd, const struct ProtobufCMessage *m);

#endif
