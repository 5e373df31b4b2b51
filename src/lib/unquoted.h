/*
 * unquoted.h - find a character of a text that may hold double-quoted
 * strings, skipping what is inside them.
 *
 * Inside a quoted string a backslash escapes the next character (so \"
 * does not end it); outside one a backslash is an ordinary character.  An
 * unterminated quoted string runs to the end of the text.  A '"' is
 * never found: it opens or closes a quoted string.
 */
#ifndef HATO_UNQUOTED_H
#define HATO_UNQUOTED_H

/* The first c of s outside double quotes, or NULL. */
const char *unquoted_chr(const char *s, char c);

/* The last c of s outside double quotes, or NULL. */
const char *unquoted_rchr(const char *s, char c);

#endif
