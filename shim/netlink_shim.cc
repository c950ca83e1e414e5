// netlink_shim: the system calls Node lacks, and nothing else.
//
// AF_NETLINK socket I/O (socket, bind, setsockopt, send, sendmmsg, recvmsg, close), a readiness
// watcher on the event loop (uv_poll) so async receivers never block, and the namespace calls
// (setns, unshare, mount, umount2) needed to enter, create and pin network namespaces, and flock
// (also as a blocking wait off the main thread) for the work_dir lock.
// There is no protocol logic here: framing, attributes and sessions live in TypeScript.
//
// Conventions: calls that are part of a hot path (send, sendmmsg, recv) return -errno instead of
// throwing; everything else throws an Error carrying `errno` and `syscall`.
#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

Napi::Value ThrowErrno(Napi::Env env, int err, const char* syscall) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

bool CheckArgs(const Napi::CallbackInfo& info, size_t n, const char* name) {
  if (info.Length() < n) {
    Napi::TypeError::New(info.Env(), std::string(name) + ": expected " + std::to_string(n) + " arguments")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

int IntArg(const Napi::CallbackInfo& info, size_t i) { return info[i].As<Napi::Number>().Int32Value(); }

sockaddr_nl KernelAddress() {
  sockaddr_nl addr;
  memset(&addr, 0, sizeof addr);
  addr.nl_family = AF_NETLINK;
  return addr;
}

// socket(protocol) -> fd. Non-blocking and close-on-exec.
Napi::Value Socket(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 1, "socket")) return info.Env().Undefined();
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IntArg(info, 0));
  if (fd < 0) return ThrowErrno(info.Env(), errno, "socket");
  return Napi::Number::New(info.Env(), fd);
}

// bind(fd, groups) -> the port id the kernel assigned (autobind, nl_pid = 0).
Napi::Value Bind(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 2, "bind")) return info.Env().Undefined();
  int fd = IntArg(info, 0);
  sockaddr_nl addr = KernelAddress();
  addr.nl_groups = info[1].As<Napi::Number>().Uint32Value();
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) return ThrowErrno(info.Env(), errno, "bind");
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0)
    return ThrowErrno(info.Env(), errno, "getsockname");
  return Napi::Number::New(info.Env(), addr.nl_pid);
}

// setsockopt(fd, level, name, intValue)
Napi::Value SetSockOpt(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 4, "setsockopt")) return info.Env().Undefined();
  int value = IntArg(info, 3);
  if (setsockopt(IntArg(info, 0), IntArg(info, 1), IntArg(info, 2), &value, sizeof value) < 0)
    return ThrowErrno(info.Env(), errno, "setsockopt");
  return info.Env().Undefined();
}

// getsockopt(fd, level, name) -> intValue
Napi::Value GetSockOpt(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 3, "getsockopt")) return info.Env().Undefined();
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(IntArg(info, 0), IntArg(info, 1), IntArg(info, 2), &value, &len) < 0)
    return ThrowErrno(info.Env(), errno, "getsockopt");
  return Napi::Number::New(info.Env(), value);
}

// send(fd, buffer, length) -> bytes sent, or -errno. One datagram to the kernel.
Napi::Value Send(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 3, "send")) return info.Env().Undefined();
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  size_t length = info[2].As<Napi::Number>().Uint32Value();
  if (length > buf.Length()) length = buf.Length();
  sockaddr_nl addr = KernelAddress();
  ssize_t n;
  do {
    n = sendto(IntArg(info, 0), buf.Data(), length, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(info.Env(), n < 0 ? -errno : static_cast<double>(n));
}

// sendmmsg(fd, buffers[]) -> datagrams sent, or -errno. Many datagrams in one system call.
Napi::Value SendMmsg(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 2, "sendmmsg")) return info.Env().Undefined();
  Napi::Array bufs = info[1].As<Napi::Array>();
  uint32_t count = bufs.Length();
  std::vector<iovec> iov(count);
  std::vector<mmsghdr> msgs(count);
  sockaddr_nl addr = KernelAddress();
  for (uint32_t i = 0; i < count; i++) {
    Napi::Buffer<uint8_t> b = bufs.Get(i).As<Napi::Buffer<uint8_t>>();
    iov[i].iov_base = b.Data();
    iov[i].iov_len = b.Length();
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &addr;
    msgs[i].msg_hdr.msg_namelen = sizeof addr;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n;
  do {
    n = sendmmsg(IntArg(info, 0), msgs.data(), count, 0);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(info.Env(), n < 0 ? -errno : n);
}

// sendInBackground(fd, buffer, length, callback(result)): the same send, on a libuv threadpool
// thread, for requests the kernel is slow to process inside sendmsg (deleting a veth waits for an
// RCU grace period): the event loop goes on meanwhile. result is bytes sent or -errno.
class SendWorker : public Napi::AsyncWorker {
 public:
  // The worker sends on its own duplicate of the socket, so closing the socket meanwhile cannot
  // make it write to whatever file reuses the number.
  SendWorker(Napi::Function cb, int fd, Napi::Buffer<uint8_t> buf, size_t length)
      : Napi::AsyncWorker(cb, "NetlinkSendInBackground"), fd_(fcntl(fd, F_DUPFD_CLOEXEC, 0)), data_(buf.Data()), length_(length) {
    buffer_ = Napi::Persistent(buf);  // keeps the bytes alive until the send is done
  }
  ~SendWorker() override {
    if (fd_ >= 0) close(fd_);
  }
  void Execute() override {
    if (fd_ < 0) {
      result_ = -EBADF;
      return;
    }
    sockaddr_nl addr = KernelAddress();
    ssize_t n;
    do {
      n = sendto(fd_, data_, length_, 0, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } while (n < 0 && errno == EINTR);
    result_ = n < 0 ? -errno : static_cast<double>(n);
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    Callback().Call({Napi::Number::New(Env(), result_)});
  }

 private:
  int fd_;
  uint8_t* data_;
  size_t length_;
  double result_ = 0;
  Napi::Reference<Napi::Buffer<uint8_t>> buffer_;
};

Napi::Value SendInBackground(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 4, "sendInBackground")) return info.Env().Undefined();
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  size_t length = info[2].As<Napi::Number>().Uint32Value();
  if (length > buf.Length()) length = buf.Length();
  (new SendWorker(info[3].As<Napi::Function>(), IntArg(info, 0), buf, length))->Queue();
  return info.Env().Undefined();
}

// recv(fd, buffer, flags, meta: Int32Array(3)) -> datagram length, or -errno.
// With MSG_TRUNC in flags the real length is returned even when it exceeds the buffer (size a
// buffer with MSG_PEEK|MSG_TRUNC first). meta receives [sender port id, msg_flags, sender groups].
Napi::Value Recv(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 4, "recv")) return info.Env().Undefined();
  Napi::Buffer<uint8_t> buf = info[1].As<Napi::Buffer<uint8_t>>();
  Napi::Int32Array meta = info[3].As<Napi::Int32Array>();
  if (meta.ElementLength() < 3) {
    Napi::TypeError::New(info.Env(), "recv: meta must hold 3 integers").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  sockaddr_nl addr;
  memset(&addr, 0, sizeof addr);
  iovec iov = {buf.Data(), buf.Length()};
  msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof addr;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  ssize_t n;
  do {
    n = recvmsg(IntArg(info, 0), &msg, IntArg(info, 2) | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Napi::Number::New(info.Env(), -errno);
  int32_t* m = meta.Data();
  m[0] = static_cast<int32_t>(addr.nl_pid);
  m[1] = msg.msg_flags;
  m[2] = static_cast<int32_t>(addr.nl_groups);
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

// waitReadable(fd, timeoutMs) -> 1 readable, 0 timed out, or -errno (-EINTR on a signal). Blocks the calling thread:
// only for the synchronous request path, whose callers accept that.
Napi::Value WaitReadable(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 2, "waitReadable")) return info.Env().Undefined();
  pollfd p = {IntArg(info, 0), POLLIN, 0};
  int n = poll(&p, 1, IntArg(info, 1));
  if (n < 0) return Napi::Number::New(info.Env(), -errno);  // -EINTR: the caller retries
  return Napi::Number::New(info.Env(), n > 0 ? 1 : 0);
}

// flock(fd, operation) -> 0, or -errno (EWOULDBLOCK with LOCK_NB). The work_dir lock: released by
// the kernel when the process dies, so a killed agent never leaves a stale lock.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 2, "flock")) return info.Env().Undefined();
  int rc;
  do {
    rc = flock(IntArg(info, 0), IntArg(info, 1));
  } while (rc < 0 && errno == EINTR);
  return Napi::Number::New(info.Env(), rc < 0 ? -errno : 0);
}

// A blocked flock(2) is interrupted by a signal of our own sent to the waiting thread: its handler
// does nothing and is installed without SA_RESTART, so flock returns EINTR and the worker looks at
// its cancel flag. Without that, a waiter that gave up would keep a threadpool thread blocked, and
// Node's exit (which joins the threadpool) would hang until the lock came free.
static int FlockWakeSignal() { return SIGRTMAX - 3; }
static std::mutex flockWaitersMutex;
static std::map<const int32_t*, pthread_t> flockWaiters;  // cancel flag -> thread waiting in flock

static void NoOpSignalHandler(int) {}

static void InstallFlockWakeHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = NoOpSignalHandler;
    sigemptyset(&sa.sa_mask);
    sigaction(FlockWakeSignal(), &sa, nullptr);
  });
}

// flockAsync(fd, operation, cancel?: Int32Array) -> Promise<0 | -errno>: a blocking flock on a
// libuv threadpool thread, so a waiter queues in the kernel and gets the lock as soon as it is
// free, without polling. A caller that gives up calls flockCancel(cancel): the flag is set and the
// wait interrupted; a worker that got the lock just before releases it at once and resolves
// -ECANCELED, so no lock outlives the waiter's interest.
class FlockWorker : public Napi::AsyncWorker {
 public:
  // Like SendWorker, the worker locks through its own duplicate of the fd (the same open file, so
  // the same lock), so closing the caller's fd meanwhile cannot redirect it to another file.
  FlockWorker(Napi::Env env, int fd, int operation, int32_t* cancel, Napi::Value cancelOwner)
      : Napi::AsyncWorker(env, "FlockAsync"),
        deferred_(Napi::Promise::Deferred::New(env)),
        fd_(fcntl(fd, F_DUPFD_CLOEXEC, 0)),
        operation_(operation),
        cancel_(cancel) {
    if (cancel_ != nullptr) cancelOwner_ = Napi::Persistent(cancelOwner.As<Napi::Object>());  // keeps the flag alive
  }
  ~FlockWorker() override {
    if (fd_ >= 0) close(fd_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    if (fd_ < 0) {
      result_ = -EBADF;
      return;
    }
    if (cancel_ != nullptr) {
      std::lock_guard<std::mutex> guard(flockWaitersMutex);
      flockWaiters[cancel_] = pthread_self();
    }
    // Threadpool threads may block signals: let ours in while waiting.
    sigset_t wake, saved;
    sigemptyset(&wake);
    sigaddset(&wake, FlockWakeSignal());
    pthread_sigmask(SIG_UNBLOCK, &wake, &saved);
    int rc;
    do {
      rc = Cancelled() ? (errno = ECANCELED, -1) : flock(fd_, operation_);
    } while (rc < 0 && errno == EINTR);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
    if (cancel_ != nullptr) {
      std::lock_guard<std::mutex> guard(flockWaitersMutex);
      flockWaiters.erase(cancel_);
    }
    errno = err;
    if (rc < 0) {
      int err = errno;
      result_ = Cancelled() ? -ECANCELED : -err;
    } else if (Cancelled() && !(operation_ & LOCK_UN)) {
      flock(fd_, LOCK_UN);  // nobody waits for it any more: give it straight back
      result_ = -ECANCELED;
    }
  }
  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), result_)); }

 private:
  bool Cancelled() const { return cancel_ != nullptr && __atomic_load_n(cancel_, __ATOMIC_SEQ_CST) != 0; }

  Napi::Promise::Deferred deferred_;
  int fd_;
  int operation_;
  int32_t* cancel_;
  Napi::ObjectReference cancelOwner_;
  int result_ = 0;
};

Napi::Value FlockAsync(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 2, "flockAsync")) return info.Env().Undefined();
  int32_t* cancel = nullptr;
  if (info.Length() > 2 && info[2].IsTypedArray()) {
    Napi::TypedArray t = info[2].As<Napi::TypedArray>();
    if (t.TypedArrayType() != napi_int32_array || t.ElementLength() < 1) {
      Napi::TypeError::New(info.Env(), "flockAsync: cancel must be an Int32Array of at least 1 element").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    cancel = t.As<Napi::Int32Array>().Data();
  }
  Napi::Value owner = cancel != nullptr ? info[2] : info.Env().Undefined();
  InstallFlockWakeHandler();
  FlockWorker* worker = new FlockWorker(info.Env(), IntArg(info, 0), IntArg(info, 1), cancel, owner);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// flockCancel(cancel: Int32Array): sets cancel[0] and interrupts the flockAsync wait that holds
// this flag until its thread has left flock(2) (a signal sent just before the thread entered it
// is lost, so it is sent again); returns once no thread waits with this flag (~50 µs normally).
Napi::Value FlockCancel(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 1, "flockCancel")) return info.Env().Undefined();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Napi::TypeError::New(info.Env(), "flockCancel: expected the Int32Array given to flockAsync").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  int32_t* cancel = info[0].As<Napi::Int32Array>().Data();
  __atomic_store_n(cancel, 1, __ATOMIC_SEQ_CST);
  for (int attempt = 0; attempt < 20000; attempt++) {
    {
      std::lock_guard<std::mutex> guard(flockWaitersMutex);
      auto it = flockWaiters.find(cancel);
      if (it == flockWaiters.end()) break;
      pthread_kill(it->second, FlockWakeSignal());
    }
    usleep(50);
  }
  return info.Env().Undefined();
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 1, "close")) return info.Env().Undefined();
  if (close(IntArg(info, 0)) < 0 && errno != EINTR) return ThrowErrno(info.Env(), errno, "close");
  return info.Env().Undefined();
}

// setns(fd, nstype): affects the calling (JS main) thread only.
Napi::Value SetNs(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 2, "setns")) return info.Env().Undefined();
  if (setns(IntArg(info, 0), IntArg(info, 1)) < 0) return ThrowErrno(info.Env(), errno, "setns");
  return info.Env().Undefined();
}

// unshare(flags): used with CLONE_NEWNET to create a namespace on the calling thread.
Napi::Value Unshare(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 1, "unshare")) return info.Env().Undefined();
  if (unshare(IntArg(info, 0)) < 0) return ThrowErrno(info.Env(), errno, "unshare");
  return info.Env().Undefined();
}

std::string OptString(const Napi::Value& v) { return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string(); }

// mount(source|null, target, fstype|null, flags, data|null): bind mounts pin a namespace to a path.
Napi::Value Mount(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 5, "mount")) return info.Env().Undefined();
  std::string source = OptString(info[0]), target = OptString(info[1]), fstype = OptString(info[2]),
              data = OptString(info[4]);
  unsigned long flags = static_cast<unsigned long>(info[3].As<Napi::Number>().Int64Value());
  if (mount(info[0].IsString() ? source.c_str() : nullptr, target.c_str(),
            info[2].IsString() ? fstype.c_str() : nullptr, flags, info[4].IsString() ? data.c_str() : nullptr) < 0)
    return ThrowErrno(info.Env(), errno, "mount");
  return info.Env().Undefined();
}

Napi::Value Umount2(const Napi::CallbackInfo& info) {
  if (!CheckArgs(info, 2, "umount2")) return info.Env().Undefined();
  std::string target = info[0].As<Napi::String>().Utf8Value();
  if (umount2(target.c_str(), IntArg(info, 1)) < 0) return ThrowErrno(info.Env(), errno, "umount2");
  return info.Env().Undefined();
}

// Poller: calls back on the event loop whenever the fd is readable. Stopped pollers keep no
// reference on the loop; unref() lets the process exit while a subscription is open.
class Poller : public Napi::ObjectWrap<Poller> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Poller",
                       {InstanceMethod("start", &Poller::Start), InstanceMethod("stop", &Poller::Stop),
                        InstanceMethod("close", &Poller::Close), InstanceMethod("ref", &Poller::Ref),
                        InstanceMethod("unref", &Poller::Unref)});
  }

  Poller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Poller>(info), context_(info.Env(), "NetlinkPoll") {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[1].IsFunction()) {
      Napi::TypeError::New(env, "Poller(fd, callback)").ThrowAsJavaScriptException();
      return;
    }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    handle_ = new uv_poll_t;
    int rc = uv_poll_init(loop, handle_, IntArg(info, 0));
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowErrno(env, -rc, "uv_poll_init");
      return;
    }
    handle_->data = this;
  }

  ~Poller() override { CloseHandle(); }

 private:
  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    Poller* self = static_cast<Poller*>(handle->data);
    if (self == nullptr) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->callback_.MakeCallback(env.Global(), {Napi::Number::New(env, status < 0 ? -status : 0)},
                                 self->context_);
  }

  void CloseHandle() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    uv_poll_stop(handle_);
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    if (handle_ == nullptr) return ThrowErrno(info.Env(), EBADF, "uv_poll_start");
    int rc = uv_poll_start(handle_, UV_READABLE, OnReadable);
    if (rc != 0) return ThrowErrno(info.Env(), -rc, "uv_poll_start");
    return info.Env().Undefined();
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    return info.Env().Undefined();
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseHandle();
    return info.Env().Undefined();
  }
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }
  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::AsyncContext context_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket));
  exports.Set("bind", Napi::Function::New(env, Bind));
  exports.Set("setsockopt", Napi::Function::New(env, SetSockOpt));
  exports.Set("getsockopt", Napi::Function::New(env, GetSockOpt));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("sendmmsg", Napi::Function::New(env, SendMmsg));
  exports.Set("sendInBackground", Napi::Function::New(env, SendInBackground));
  exports.Set("recv", Napi::Function::New(env, Recv));
  exports.Set("waitReadable", Napi::Function::New(env, WaitReadable));
  exports.Set("flock", Napi::Function::New(env, Flock));
  exports.Set("flockAsync", Napi::Function::New(env, FlockAsync));
  exports.Set("flockCancel", Napi::Function::New(env, FlockCancel));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("setns", Napi::Function::New(env, SetNs));
  exports.Set("unshare", Napi::Function::New(env, Unshare));
  exports.Set("mount", Napi::Function::New(env, Mount));
  exports.Set("umount2", Napi::Function::New(env, Umount2));
  exports.Set("Poller", Poller::Init(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(netlink_shim, Init)
