/* grefine's C helpers for the Triton backend (declared in cgo/include/grefine_triton.h).
 * They hold no method: a clock, a signal-flag fix and a log forwarder. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "grefine_triton.h"

uint64_t grf_triton_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int32_t grf_triton_signals_onstack(char *err, size_t errlen) {
  static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
  int32_t handled = 0;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    struct sigaction sa;
    if (sigaction(sigs[i], NULL, &sa) != 0) {
      if (err != NULL && errlen > 0) snprintf(err, errlen, "sigaction(%d): reading the handler failed", sigs[i]);
      return -1;
    }
    if ((sa.sa_flags & SA_SIGINFO) == 0 && (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)) continue;
    handled++;
    if (sa.sa_flags & SA_ONSTACK) continue;
    sa.sa_flags |= SA_ONSTACK;
    if (sigaction(sigs[i], &sa, NULL) != 0) {
      if (err != NULL && errlen > 0) snprintf(err, errlen, "sigaction(%d): setting SA_ONSTACK failed", sigs[i]);
      return -1;
    }
  }
  if (err != NULL && errlen > 0) err[0] = '\0';
  return handled;
}

void grf_triton_log(TRITONSERVER_LogLevel level, const char *msg) {
  if (!TRITONSERVER_LogIsEnabled(level)) return;
  TRITONSERVER_Error *e = TRITONSERVER_LogMessage(level, "grefine", 0, msg);
  if (e != NULL) TRITONSERVER_ErrorDelete(e);
}
