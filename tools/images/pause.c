/*
 * The pod sandbox's first process (what Kubernetes' own pause image does):
 * it holds the pod's namespaces open and does nothing else. As PID 1 of the
 * sandbox it must reap orphans that end up re-parented to it, and exit 0 on
 * SIGINT/SIGTERM so that a stopped sandbox counts as a clean stop. No registry
 * is reachable here, so tools/images/build.sh compiles this statically into a
 * FROM scratch image instead of pulling registry.k8s.io/pause.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_shutdown(int signo) {
  (void)signo;
  /* _exit: the only exit that is async-signal-safe. */
  _exit(0);
}

static void on_child(int signo) {
  (void)signo;
  int saved = errno;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int handle(int signo, void (*handler)(int), int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof(action));
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv) {
  (void)argv;
  if (argc > 1) {
    fputs("usage: pause (no arguments; exits 0 on SIGINT or SIGTERM)\n", stderr);
    return 2;
  }
  if (handle(SIGINT, on_shutdown, 0) != 0 || handle(SIGTERM, on_shutdown, 0) != 0 ||
      handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) != 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
}
