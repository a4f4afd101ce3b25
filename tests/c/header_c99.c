/* grefine.h compiles as strict C99 (-std=c99 -Wall -Wextra -pedantic -Werror); linked
 * against the static archive (c-archive) as well as the shared library. */
#include "grefine.h"

#include <stdio.h>

int main(void) {
  grefine_options o;
  grefine_params p;
  grefine_options_init(&o);
  grefine_params_init(&p);
  if (grefine_abi_version() != GREFINE_ABI_VERSION || o.struct_size != sizeof o || p.struct_size != sizeof p) {
    fprintf(stderr, "header_c99: ABI %d vs %d\n", grefine_abi_version(), GREFINE_ABI_VERSION);
    return 1;
  }
  printf("header_c99: ok (libgrefine %s, ABI %d)\n", grefine_version(), grefine_abi_version());
  return 0;
}
