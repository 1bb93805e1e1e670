#include "cpu/threadpool.h"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <system_error>

namespace mbl {
namespace {

// How long an idle worker, or a caller waiting for its job to finish, polls before blocking on a condition
// variable. A futex wake-up costs tens of microseconds of latency, longer than many of our GEMMs, so the
// next job of a forward pass should find the workers still polling; after a pause this long nothing is
// coming soon and the core is given back.
constexpr std::chrono::microseconds kWorkerSpin{200};
constexpr std::chrono::microseconds kCallerSpin{200};

constexpr std::uint64_t kIndexMask = 0xffffffffu;  // the task index in ThreadPool::state_'s low half

// Polls done() for up to `budget`; true as soon as it holds. The clock is read every 64 polls only.
template <class Done>
bool spin_until(Done&& done, std::chrono::microseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

// The pool and worker index whose task this thread is running, so that a nested run() on the same pool
// runs inline (the pool is busy with the outer job; queueing on run_mutex_ would deadlock).
thread_local const ThreadPool* tl_pool = nullptr;
thread_local int tl_worker = 0;

struct CurrentPool {  // sets tl_pool/tl_worker for a scope, restoring the outer values after
  const ThreadPool* saved_pool;
  int saved_worker;
  CurrentPool(const ThreadPool* pool, int worker) : saved_pool(tl_pool), saved_worker(tl_worker) {
    tl_pool = pool;
    tl_worker = worker;
  }
  ~CurrentPool() {
    tl_pool = saved_pool;
    tl_worker = saved_worker;
  }
};

}  // namespace

ThreadPool::ThreadPool(int num_threads) : size_(num_threads) {
  if (num_threads < 1)
    throw std::invalid_argument("ThreadPool: num_threads must be >= 1, got " + std::to_string(num_threads));
  threads_.reserve(static_cast<std::size_t>(num_threads - 1));
  try {
    for (int w = 1; w < num_threads; ++w) threads_.emplace_back([this, w] { worker_main(w); });
  } catch (...) {  // std::system_error: stop the workers already started, or their destructors terminate
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
    throw;
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::run_inline(std::size_t num_tasks, const Task& task, int worker) {
  for (std::size_t t = 0; t < num_tasks; ++t) task.call(task.fn, t, worker);
}

void ThreadPool::run_task(std::size_t num_tasks, const Task& task) {
  if (num_tasks == 0) return;
  if (tl_pool == this) return run_inline(num_tasks, task, tl_worker);  // nested: we already are a worker
  if (num_tasks == 1 || size_ == 1) return run_inline(num_tasks, task, 0);
  if (num_tasks >= kIndexMask) throw std::invalid_argument("ThreadPool::run: too many tasks");

  std::lock_guard<std::mutex> job_lock(run_mutex_);
  // Close the previous job before touching its fields. A worker may have read state_ (all of the old job's
  // tasks claimed) and then num_tasks_ of the job being written here; with the old state still in place its
  // compare-exchange would succeed and claim a task that does not exist (a phantom task, run with an index
  // past the job's end and counted in done_, which then never equals num_tasks). A new generation with the
  // index at kIndexMask makes every such stale claim fail and every fresh look see "all claimed".
  const auto closed = static_cast<std::uint32_t>((state_.load(std::memory_order_seq_cst) >> 32) + 1);
  state_.store((static_cast<std::uint64_t>(closed) << 32) | kIndexMask, std::memory_order_seq_cst);
  call_.store(task.call, std::memory_order_seq_cst);
  fn_.store(task.fn, std::memory_order_seq_cst);
  num_tasks_.store(num_tasks, std::memory_order_seq_cst);
  done_.store(0, std::memory_order_seq_cst);
  failed_.store(false, std::memory_order_seq_cst);
  error_ = nullptr;
  const std::uint32_t generation = closed + 1;
  bool wake;
  {
    // Under mutex_ so that a worker about to sleep either sees the new job or is counted in sleepers_.
    std::lock_guard<std::mutex> lock(mutex_);
    state_.store(static_cast<std::uint64_t>(generation) << 32, std::memory_order_seq_cst);
    wake = sleepers_ > 0;
  }
  if (wake) wake_.notify_all();

  {
    CurrentPool current(this, 0);
    work(generation, 0);
  }

  const auto finished = [&] { return done_.load(std::memory_order_acquire) == num_tasks; };
  if (!spin_until(finished, kCallerSpin)) {
    std::unique_lock<std::mutex> lock(mutex_);
    caller_waiting_ = true;
    finished_.wait(lock, finished);
    caller_waiting_ = false;
  }
  // Every task is done: error_ is final (published by the release of its thread's increment of done_).
  if (failed_.load(std::memory_order_relaxed)) std::rethrow_exception(error_);
}

void ThreadPool::work(std::uint32_t generation, int worker) {
  std::uint64_t s = state_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<std::uint32_t>(s >> 32) != generation) return;  // that job is over; a newer one runs
    const std::size_t n = num_tasks_.load(std::memory_order_seq_cst);
    const Task task{call_.load(std::memory_order_seq_cst), fn_.load(std::memory_order_seq_cst)};
    const std::size_t t = s & kIndexMask;
    if (t >= n) return;  // all claimed
    // Success means the job was still current with task t unclaimed, so n and task were its values.
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_seq_cst, std::memory_order_seq_cst)) continue;
    if (!failed_.load(std::memory_order_relaxed)) {  // after a failure the rest are skipped, but counted
      try {
        task.call(task.fn, t, worker);
      } catch (...) {
        if (!failed_.exchange(true, std::memory_order_acq_rel)) error_ = std::current_exception();
      }
    }
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n && worker != 0) {
      // Finished the job's last task on a worker: the caller may have stopped spinning. Taking mutex_
      // orders this with its check of done_ under the same mutex, so the notification cannot be lost.
      std::lock_guard<std::mutex> lock(mutex_);
      if (caller_waiting_) finished_.notify_one();
    }
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_main(int worker) {
  CurrentPool current(this, worker);
  std::uint32_t seen = 0;
  const auto generation = [this] { return static_cast<std::uint32_t>(state_.load(std::memory_order_acquire) >> 32); };
  for (;;) {
    const auto has_job = [&] { return generation() != seen; };
    if (!spin_until(has_job, kWorkerSpin)) {
      std::unique_lock<std::mutex> lock(mutex_);
      ++sleepers_;
      wake_.wait(lock, [&] { return stop_ || has_job(); });
      --sleepers_;
      if (stop_) return;  // only set when no job is in flight (see ~ThreadPool)
    }
    seen = generation();
    work(seen, worker);
  }
}

ThreadPool& shared_pool(int num_threads) {
  if (num_threads < 1)
    throw std::invalid_argument("shared_pool: num_threads must be >= 1, got " + std::to_string(num_threads));
  static std::mutex mutex;
  // Leaked on purpose: joining threads from a static destructor at exit can deadlock (and the interpreter
  // may still be running Python threads that use the pool).
  static auto* pools = new std::map<int, ThreadPool*>();
  std::lock_guard<std::mutex> lock(mutex);
  ThreadPool*& pool = (*pools)[num_threads];
  if (pool == nullptr) pool = new ThreadPool(num_threads);
  return *pool;
}

int default_num_threads() {
  struct Result {
    int threads = 1;
    std::string error;
  };
  static const Result result = [] {
    Result r;
    const char* env = std::getenv("MBL_NUM_THREADS");
    if (env != nullptr && *env != '\0') {
      char* end = nullptr;
      errno = 0;
      const long v = std::strtol(env, &end, 10);
      if (*end != '\0' || errno != 0 || v < 1 || v > 1024)
        r.error = std::string("MBL_NUM_THREADS must be an integer in [1, 1024], got '") + env + "'";
      else
        r.threads = static_cast<int>(v);
      return r;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    r.threads = hw == 0 ? 1 : static_cast<int>(hw);
    return r;
  }();
  if (!result.error.empty()) throw std::runtime_error(result.error);
  return result.threads;
}

}  // namespace mbl
