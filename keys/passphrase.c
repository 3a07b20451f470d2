#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "enlace/keys.h"

void
enl_passphrase_free(char *pass)
{
	sodium_free(pass);
}

static int
take(const char *src, size_t n, char **out, size_t *len)
{
	char *p;

	if (n == 0)
		return ENL_E_MALFORMED;
	if (n > ENL_PASSPHRASE_MAX)
		return ENL_E_TOO_LARGE;
	if ((p = sodium_malloc(n + 1)) == NULL)
		return ENL_E_NOMEM;
	memcpy(p, src, n);
	p[n] = '\0';
	*out = p;
	*len = n;
	return ENL_OK;
}

int
enl_passphrase_from_file(const char *path, char **out, size_t *len)
{
	uint8_t *buf = NULL;
	size_t n = 0, line;
	int rc = enl_file_read(path, 64 << 10, &buf, &n);

	if (rc != ENL_OK)
		return rc;
	for (line = 0; line < n && buf[line] != '\n' && buf[line] != '\r'; line++)
		;
	rc = take((const char *)buf, line, out, len);
	sodium_memzero(buf, n);
	free(buf);
	return rc;
}

/* Reads one line from the terminal fd with echo off into buf. */
static int
read_line(int fd, const char *prompt, char *buf, size_t cap, size_t *n)
{
	struct termios old, quiet;
	size_t got = 0;
	char c;
	int rc = ENL_OK;

	if (tcgetattr(fd, &old) != 0)
		return ENL_E_NOT_FOUND;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		return ENL_E_IO;
	for (;;) {
		ssize_t r = read(fd, &c, 1);
		if (r <= 0 || c == '\n' || c == '\r')
			break;
		if (got + 1 >= cap) {
			rc = ENL_E_TOO_LARGE;
			continue;	/* drain the line */
		}
		buf[got++] = c;
	}
	c = '\0';
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0)
		rc = ENL_E_IO;
	*n = got;
	return rc;
}

int
enl_passphrase_prompt(const char *prompt, bool confirm, char **out, size_t *len)
{
	char *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	int fd, rc;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0)
		return ENL_E_NOT_FOUND;
	rc = ENL_E_NOMEM;
	if ((a = sodium_malloc(ENL_PASSPHRASE_MAX + 1)) == NULL ||
	    (b = sodium_malloc(ENL_PASSPHRASE_MAX + 1)) == NULL)
		goto out;
	if ((rc = read_line(fd, prompt, a, ENL_PASSPHRASE_MAX + 1, &na)) != ENL_OK)
		goto out;
	if (confirm) {
		rc = read_line(fd, "Repeat passphrase: ", b, ENL_PASSPHRASE_MAX + 1, &nb);
		if (rc != ENL_OK)
			goto out;
		if (na != nb || sodium_memcmp(a, b, na) != 0) {
			rc = ENL_E_INVAL;
			goto out;
		}
	}
	rc = take(a, na, out, len);
out:
	sodium_free(a);
	sodium_free(b);
	close(fd);
	return rc;
}

int
enl_keyfile_unlock(const char *path, const char *pass_file,
		   struct enl_identity **out, char **pass, size_t *pass_len,
		   bool *no_terminal)
{
	char *pw = NULL;
	size_t n = 0;
	bool enc = false;
	int rc;

	*no_terminal = false;
	if ((rc = enl_keyfile_probe(path, &enc)) != ENL_OK)
		return rc;
	if (enc && pass_file != NULL)
		rc = enl_passphrase_from_file(pass_file, &pw, &n);
	else if (enc)
		rc = enl_passphrase_prompt("Passphrase: ", false, &pw, &n);
	if (rc == ENL_E_NOT_FOUND && pass_file == NULL)
		*no_terminal = true;
	if (rc != ENL_OK)
		return rc;
	rc = enl_keyfile_read(path, pw, n, out);
	if (rc == ENL_OK && pass != NULL) {
		*pass = pw;
		*pass_len = n;
		pw = NULL;
	}
	enl_passphrase_free(pw);
	return rc;
}

int
enl_keydir_load(const char *key_dir, const char *pass_file, const char *no_tty_hint,
		struct enl_identity **out, char *why, size_t why_cap)
{
	char path[4096];
	bool no_tty = false;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/secret.key", key_dir) >= sizeof(path)) {
		snprintf(why, why_cap, "%s: path too long", key_dir);
		return ENL_E_INVAL;
	}
	rc = enl_keyfile_unlock(path, pass_file && *pass_file ? pass_file : NULL, out, NULL,
				NULL, &no_tty);
	if (rc != ENL_OK)
		snprintf(why, why_cap, "%s: %s%s%s", path, enl_strerror(rc),
			 no_tty ? " " : "", no_tty ? no_tty_hint : "");
	return rc;
}
