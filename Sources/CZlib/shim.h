#ifndef STRATA_CZLIB_SHIM_H
#define STRATA_CZLIB_SHIM_H
// Used only for crc32(): zlib's is table-driven and fast, and zlib is already linked for compression.
#include <zlib.h>
#endif
