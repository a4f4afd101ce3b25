/* Concurrency and cancellation: 4 threads assessing at once on one pipeline (each result
 * equals the single-threaded one), grefine_cancel from another thread in the middle of a
 * refine, and progress callbacks that cancel (refine and assess). */
#include "check.h"

#include <pthread.h>

static grefine_pipeline *pipe_;
static grefine_image img_;
static grefine_assessment *ref_;
static const char *prompt_ = "a red square on a blue gradient";

#define THREADS 4
#define ROUNDS 3

static void *assess_worker(void *arg) {
  char err[512], id[32];
  int k, *bad = arg;
  for (k = 0; k < ROUNDS; k++) {
    grefine_assessment *a = NULL;
    grefine_params pr;
    size_t n = (size_t)img_.width * (size_t)img_.height;
    grefine_params_init(&pr);
    snprintf(id, sizeof id, "t%p-%d", arg, k);
    pr.request_id = id;
    if (grefine_assess(pipe_, &img_, prompt_, &pr, &a, err, sizeof err) != GREFINE_OK) {
      fprintf(stderr, "assess in a thread: %s\n", err);
      (*bad)++;
      continue;
    }
    if (!same_floats(a->p_map, ref_->p_map, n) || !same_floats(a->a_map, ref_->a_map, n) ||
        !same_floats(a->mask, ref_->mask, n) || a->q != ref_->q || strcmp(a->request_id, id) != 0)
      (*bad)++;
    grefine_assessment_free(a);
  }
  return NULL;
}

static void test_four_threads(void) {
  char err[512];
  pthread_t t[THREADS];
  int bad[THREADS] = {0}, i;
  CHECK_STATUS(grefine_assess(pipe_, &img_, prompt_, NULL, &ref_, err, sizeof err), GREFINE_OK, err);
  REQUIRE(ref_ != NULL, "reference");
  for (i = 0; i < THREADS; i++) REQUIRE(pthread_create(&t[i], NULL, assess_worker, &bad[i]) == 0, "thread");
  for (i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  for (i = 0; i < THREADS; i++) CHECK(bad[i] == 0, "thread %d: %d of %d results differ or failed", i, bad[i], ROUNDS);
  grefine_assessment_free(ref_);
}

/* Cancel from another thread: the refine signals once stage 1 has made a step. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stepped = 0, steps_after_cancel = 0, cancelled = 0;

static int signal_progress(void *user, const char *stage, int step, int total) {
  (void)user;
  (void)total;
  pthread_mutex_lock(&mu);
  if (strcmp(stage, "stage1") == 0 && step >= 1) {
    stepped = 1;
    pthread_cond_broadcast(&cv);
  }
  if (cancelled && (strcmp(stage, "stage1") == 0 || strcmp(stage, "stage2") == 0)) steps_after_cancel++;
  pthread_mutex_unlock(&mu);
  return 0;
}

struct refine_result {
  grefine_status st;
  grefine_refinement *r;
  char err[512];
};

static void *refine_worker(void *arg) {
  struct refine_result *res = arg;
  grefine_params pr;
  grefine_params_init(&pr);
  pr.request_id = "long-refine";
  pr.steps1 = 40;
  pr.steps2 = 40;
  pr.progress = signal_progress;
  res->st = grefine_refine(pipe_, &img_, prompt_, &pr, &res->r, res->err, sizeof res->err);
  return NULL;
}

static void test_cancel_from_thread(void) {
  pthread_t t;
  struct refine_result res;
  memset(&res, 0, sizeof res);
  REQUIRE(pthread_create(&t, NULL, refine_worker, &res) == 0, "thread");
  pthread_mutex_lock(&mu);
  while (!stepped) pthread_cond_wait(&cv, &mu);
  cancelled = 1;
  pthread_mutex_unlock(&mu);
  CHECK(grefine_cancel(pipe_, "long-refine") == 1, "the refine was in flight");
  pthread_join(t, NULL);
  CHECK_STATUS(res.st, GREFINE_ERR_CANCELED, res.err);
  CHECK(res.r == NULL, "no result after a cancel");
  CHECK(steps_after_cancel <= 2, "%d progress events after the cancel (want it within one step)", steps_after_cancel);
  CHECK(grefine_cancel(pipe_, "long-refine") == 0, "no longer in flight");
  printf("cancel from another thread: %s (%d events after the cancel)\n", res.err, steps_after_cancel);
}

static int cancel_at(void *user, const char *stage, int step, int total) {
  const char *want = user;
  (void)total;
  return strcmp(stage, want) == 0 && (step >= 1 || strcmp(want, "assess") == 0);
}

static void test_progress_cancels(void) {
  char err[512];
  grefine_params pr;
  grefine_refinement *r = NULL;
  grefine_assessment *a = NULL;
  grefine_params_init(&pr);
  pr.steps1 = 5;
  pr.steps2 = 5;
  pr.progress = cancel_at;
  pr.progress_user = "stage1";
  CHECK_STATUS(grefine_refine(pipe_, &img_, prompt_, &pr, &r, err, sizeof err), GREFINE_ERR_CANCELED, err);
  CHECK(strstr(err, "progress callback") != NULL, "message: %s", err);
  CHECK(r == NULL, "no result");
  pr.progress_user = "assess";
  CHECK_STATUS(grefine_assess(pipe_, &img_, prompt_, &pr, &a, err, sizeof err), GREFINE_ERR_CANCELED, err);
  CHECK(a == NULL, "no result");
  /* A callback that never cancels: the call succeeds and the ids are free again. */
  pr.progress_user = "never";
  CHECK_STATUS(grefine_refine(pipe_, &img_, prompt_, &pr, &r, err, sizeof err), GREFINE_OK, err);
  CHECK(r != NULL && r->image.width == img_.width && r->image.stride == 3 * img_.width && r->assessment != NULL,
        "refinement");
  CHECK(r != NULL && r->struct_size == sizeof *r, "struct_size");
  grefine_refinement_free(r);
}

int main(int argc, char **argv) {
  char err[512];
  grefine_options o;
  grefine_options_init(&o);
  o.models = test_models(argc, argv);
  o.slots = THREADS;
  CHECK_STATUS(grefine_open(&o, &pipe_, err, sizeof err), GREFINE_OK, err);
  REQUIRE(pipe_ != NULL, "open: %s", err);
  img_ = test_image(96, 64, 3);
  test_four_threads();
  test_cancel_from_thread();
  test_progress_cancels();
  grefine_close(pipe_);
  free((void *)img_.rgb);
  return check_done("test_threads");
}
