// A fixed-size thread pool for the forward pass: threads are created once and parked between jobs, so a
// job costs a wake-up, not a thread spawn (MobileBERT runs ~360 GEMMs per forward, each microseconds long).
//
// The calling thread is worker 0 and runs tasks too; num_threads - 1 background workers do the rest. Tasks
// are claimed dynamically (an atomic counter), so which worker runs which task varies from call to call:
// callers that need results independent of the thread count must make each task's output independent of
// who runs it and of the other tasks (ops/linear.cc never splits a dot product's K for this reason).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace mbl {

// One polling step of a spin-wait: tells the core (and its SMT sibling) that we are waiting.
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();  // SSE2 `pause`, in the x86-64 baseline: no ISA flag needed
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield");
#endif
}

class ThreadPool {
 public:
  // num_threads >= 1 (std::invalid_argument otherwise): the caller plus num_threads - 1 background workers,
  // all created here. Throws std::system_error if a thread cannot be created (none are left running).
  explicit ThreadPool(int num_threads);
  ~ThreadPool();  // joins the workers; no run() may be in progress
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return size_; }

  // Calls fn(task, worker) once for every task in [0, num_tasks) and returns when all have finished.
  // worker is in [0, size()) and no two tasks run concurrently with the same worker, so it can index
  // per-worker scratch. fn is taken by reference (no copy, no allocation) and must be callable
  // concurrently from several threads.
  //
  // If a task throws, the tasks not yet started are skipped, the ones running finish, and the first
  // exception is rethrown here. num_tasks <= 1, size() == 1, or a call from inside one of this pool's own
  // tasks runs everything inline on the calling thread (the latter instead of deadlocking). One pool
  // serves one run() at a time: concurrent calls from different threads queue on a mutex.
  template <class F>
  void run(std::size_t num_tasks, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    const Task task{[](void* f, std::size_t t, int w) { (*static_cast<Fn*>(f))(t, w); },
                    const_cast<void*>(static_cast<const void*>(std::addressof(fn)))};
    run_task(num_tasks, task);
  }

 private:
  // A type-erased, non-owning reference to the job's callable: cheaper than std::function, which may
  // allocate for a capturing lambda.
  struct Task {
    void (*call)(void* fn, std::size_t task, int worker);
    void* fn;
  };

  void run_task(std::size_t num_tasks, const Task& task);
  void run_inline(std::size_t num_tasks, const Task& task, int worker);
  void worker_main(int worker);
  // Claims and runs tasks of job `generation` until none are left (or another job has started).
  void work(std::uint32_t generation, int worker);

  const int size_;
  std::vector<std::thread> threads_;

  std::mutex run_mutex_;  // held for a whole run(): one job at a time

  // Job hand-off. state_ = (generation << 32) | next unclaimed task: a task is claimed by a compare-exchange
  // that also checks the generation, so a worker that wakes up late -- after the caller has finished the job
  // alone -- claims nothing from it, and run() never waits for workers that have nothing left to do (which,
  // on a busy machine, could be a whole scheduler time slice). run() returns once done_ == num_tasks: every
  // claimed task has finished, so no thread still uses the job's fields when the next job rewrites them.
  // The fields are atomics because a late worker may read them while they are being rewritten; its claim
  // then fails, so what it read is never used.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<void (*)(void*, std::size_t, int)> call_{nullptr};
  std::atomic<void*> fn_{nullptr};
  std::atomic<std::size_t> num_tasks_{0};
  std::atomic<std::size_t> done_{0};   // tasks of the current job finished (or skipped after a failure)
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;           // the first exception of the current job (written once, by failed_)

  std::mutex mutex_;                   // guards the sleeping side: sleepers_, caller_waiting_, stop_
  std::condition_variable wake_;       // workers sleep here between jobs
  std::condition_variable finished_;   // the caller sleeps here if a job outlasts its spin
  int sleepers_ = 0;
  bool caller_waiting_ = false;
  bool stop_ = false;
};

// A process-wide pool of num_threads threads (std::invalid_argument if < 1), created on first use
// (thread-safe) and kept until exit, so bindings and tests share threads instead of creating their own.
// Callers using pools of different sizes run concurrently; callers of the same size take turns.
ThreadPool& shared_pool(int num_threads);

// The default thread count: the environment variable MBL_NUM_THREADS if set and non-empty (an integer in
// [1, 1024], else std::runtime_error on every call), otherwise std::thread::hardware_concurrency() (1 if
// unknown). Read once, on the first call.
int default_num_threads();

}  // namespace mbl
