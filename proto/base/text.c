/*
 * Text from other agencies: strict UTF-8, the characters that change how
 * a terminal shows what follows (C0 and C1 controls, DEL, bidirectional
 * formatting), and how each is escaped for a terminal or JSON.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enlace/base.h"

size_t
enl_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c, min;
	size_t n;

	if (len == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 2, c &= 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3, c &= 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4, c &= 0x07, min = 0x10000;
	} else {
		return 0;	/* a continuation byte, or 0xf8..0xff */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;	/* overlong, past Unicode, or a surrogate */
	*cp = c;
	return n;
}

bool
enl_utf8_valid(const char *s, size_t len)
{
	uint32_t cp;
	size_t n;

	for (size_t i = 0; i < len; i += n)
		if ((n = enl_utf8_next((const unsigned char *)s + i, len - i, &cp)) == 0)
			return false;
	return true;
}

bool
enl_cp_control(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

bool
enl_cp_bidi(uint32_t cp)
{
	return cp == 0x061c || cp == 0x200e || cp == 0x200f || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* Valid UTF-8 of at most max bytes whose every character passes ok(). */
static bool
text_check(const char *s, size_t max, bool multiline)
{
	size_t len = max == SIZE_MAX ? strlen(s) : strnlen(s, max + 1), n;
	uint32_t cp;

	if (len > max)
		return false;
	for (size_t i = 0; i < len; i += n) {
		if ((n = enl_utf8_next((const unsigned char *)s + i, len - i, &cp)) == 0)
			return false;
		if (multiline && (cp == '\n' || cp == '\t' || cp == '\r'))
			continue;
		if (enl_cp_control(cp) || (!multiline && enl_cp_bidi(cp)))
			return false;
	}
	return true;
}

bool
enl_text_valid(const char *s, size_t max)
{
	return text_check(s, max, false);
}

bool
enl_body_valid(const char *s, size_t max)
{
	return text_check(s, max, true);
}

/* How one character is shown: NULL as itself, or its escape into buf. */
static const char *
escape_of(const unsigned char *s, size_t n, uint32_t cp, bool multiline, char buf[16])
{
	if (n == 0) {
		snprintf(buf, 16, "\\x%02x", s[0]);	/* not UTF-8 */
		return buf;
	}
	if (multiline && (cp == '\n' || cp == '\t'))
		return NULL;
	if (cp < 0x20 || cp == 0x7f) {
		snprintf(buf, 16, "\\x%02x", (unsigned)cp);
		return buf;
	}
	if (enl_cp_control(cp) || enl_cp_bidi(cp) || cp == 0x2028 || cp == 0x2029) {
		snprintf(buf, 16, "\\u%04x", (unsigned)cp);
		return buf;
	}
	return NULL;
}

char *
enl_term_escape(const char *s, bool multiline)
{
	size_t len = strlen(s), o = 0, n;
	char *out = malloc(len * 6 + 1), buf[16];	/* \u202e: 6 for at most 3 */
	const unsigned char *p = (const unsigned char *)s;
	uint32_t cp = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < len; i += n ? n : 1) {
		const char *e;
		n = enl_utf8_next(p + i, len - i, &cp);
		if ((e = escape_of(p + i, n, cp, multiline, buf)) != NULL) {
			memcpy(out + o, e, strlen(e));
			o += strlen(e);
		} else {
			memcpy(out + o, p + i, n);
			o += n;
		}
	}
	out[o] = '\0';
	return out;
}

void
enl_json_put_string(void *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), n;
	uint32_t cp = 0;

	fputc('"', fp);
	for (size_t i = 0; i < len; i += n ? n : 1) {
		n = enl_utf8_next(p + i, len - i, &cp);
		if (n == 0)
			fputs("\\ufffd", fp);	/* never invalid UTF-8 in JSON */
		else if (cp == '"' || cp == '\\')
			fprintf(fp, "\\%c", (char)cp);
		else if (cp == '\n')
			fputs("\\n", fp);
		else if (cp == '\t')
			fputs("\\t", fp);
		else if (enl_cp_control(cp) || enl_cp_bidi(cp) || cp == 0x2028 || cp == 0x2029)
			fprintf(fp, "\\u%04x", (unsigned)cp);
		else
			fwrite(p + i, 1, n, fp);
	}
	fputc('"', fp);
}

int
enl_text_take(uint8_t *buf, size_t len, char **text)
{
	char *t;

	if (memchr(buf, '\0', len) != NULL) {
		free(buf);
		return ENL_E_MALFORMED;
	}
	if ((t = realloc(buf, len + 1)) == NULL) {
		free(buf);
		return ENL_E_NOMEM;
	}
	t[len] = '\0';
	*text = t;
	return ENL_OK;
}
