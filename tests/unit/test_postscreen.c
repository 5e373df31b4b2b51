/*
 * test_postscreen.c - the HELO names [client_checks] helo finds fault
 * with (src/smtp/postscreen.c): a bare IPv4 or IPv6 address, our own
 * host name in any case and with a final dot; never an address literal
 * or another name.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "postscreen.h"

static void test_helo_fault(void **state)
{
	(void)state;
	assert_int_equal(postscreen_helo_fault("192.0.2.1", "mx.example.org"), HELO_FAULT_BARE_IP);
	assert_int_equal(postscreen_helo_fault("2001:db8::1", "mx.example.org"),
			 HELO_FAULT_BARE_IP);
	assert_int_equal(postscreen_helo_fault("mx.example.org", "mx.example.org"),
			 HELO_FAULT_OUR_NAME);
	assert_int_equal(postscreen_helo_fault("MX.Example.ORG.", "mx.example.org"),
			 HELO_FAULT_OUR_NAME);
	assert_int_equal(postscreen_helo_fault("[192.0.2.1]", "mx.example.org"), HELO_FAULT_NONE);
	assert_int_equal(postscreen_helo_fault("[IPv6:2001:db8::1]", "mx.example.org"),
			 HELO_FAULT_NONE);
	assert_int_equal(postscreen_helo_fault("mail.example.net", "mx.example.org"),
			 HELO_FAULT_NONE);
	assert_int_equal(postscreen_helo_fault("mx.example.org.evil", "mx.example.org"),
			 HELO_FAULT_NONE);
	assert_int_equal(postscreen_helo_fault("192.0.2.1.example", "mx.example.org"),
			 HELO_FAULT_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_helo_fault),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
