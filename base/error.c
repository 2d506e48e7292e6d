/* error.c - nv_strerror / nv_err_name, generated from NV_ERRNO_MAP. */
#include "nuvom/error.h"

const char *
nv_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
#define NV__ERR_MSG(name, val, msg)                                            \
	case (val):                                                            \
		return (msg);
		NV_ERRNO_MAP(NV__ERR_MSG)
#undef NV__ERR_MSG
	default:
		return "unknown error";
	}
}

const char *
nv_err_name(int rc)
{
	switch (rc) {
	case 0:
		return "OK";
#define NV__ERR_NAME(name, val, msg)                                           \
	case (val):                                                            \
		return #name;
		NV_ERRNO_MAP(NV__ERR_NAME)
#undef NV__ERR_NAME
	default:
		return "UNKNOWN";
	}
}
