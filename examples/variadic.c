/* Variadic functions of the program, migrated while their va_list is in
 * use: between va_arg reads (with calls and loops in between), in a
 * function handed the va_list, after va_copy, and before va_start. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static unsigned long state = 88172645463325252UL;

/* Work with loops that migration points land in; kept out of line. */
__attribute__((noinline)) static long churn(long x)
{
	long s = 0;
	for (long i = 0; i < 40 + (x & 7); i++) {
		state ^= state << 13;
		state ^= state >> 7;
		state ^= state << 17;
		s += (long)(state % 1000) ^ x;
	}
	return s;
}

/* Takes the va_list: every argument read here, between calls. */
static long vtally(int n, va_list ap)
{
	long t = 0;
	for (int i = 0; i < n; i++) {
		t += churn(t + i) % 97;
		t = t * 31 + va_arg(ap, int);
	}
	return t;
}

static long tally(int n, ...)
{
	va_list ap;
	va_start(ap, n);
	long t = vtally(n, ap);
	va_end(ap);
	return t;
}

/* A format of its own: i int, l long, d double, s string. Reads a copy
 * of the va_list twice as far as the original. */
static double mix(const char *fmt, ...)
{
	double d = churn(strlen(fmt)) % 13;
	va_list ap, again;
	va_start(ap, fmt);
	va_copy(again, ap);
	for (const char *p = fmt; *p; p++) {
		d += churn((long)d) % 11;
		switch (*p) {
		case 'i': d += va_arg(ap, int); break;
		case 'l': d += (double)va_arg(ap, long) / 3; break;
		case 'd': d += va_arg(ap, double) * 1.5; break;
		case 's': d += strlen(va_arg(ap, const char *)); break;
		}
	}
	va_end(ap);
	/* The copy still starts at the first argument. */
	if (fmt[0] == 'i')
		d += va_arg(again, int) * 1000;
	va_end(again);
	return d;
}

/* Formats into buf with the C library, after work of its own. */
static int say(char *buf, size_t size, const char *fmt, ...)
{
	churn(size);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int main(void)
{
	double total = 0;
	long t = 0;
	char line[128];
	for (int k = 0; k < 300; k++) {
		t += tally(6, k, 2, 3, -k, 5, 6);
		t += tally(1, k * 7);
		total += mix("ilds", k, 70000000000L + k, 2.5 + k, "migrate");
		total += mix("dddddddddd", 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, k / 4.0);
		total += mix("iiiiiiiiil", 1, 2, 3, 4, 5, 6, 7, 8, k, (long)k << 33);
		say(line, sizeof line, "%d|%ld|%.3f|%s", k, t, total, k % 2 ? "odd" : "even");
		if (k % 50 == 0)
			puts(line);
	}
	printf("tally %ld mix %.4f\n", t, total);
	return 0;
}
