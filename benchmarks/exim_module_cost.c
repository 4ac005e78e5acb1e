// What sluice's Exim module costs a process, outside Exim: loads
// sluice_exim.so as Exim's ${dlfunc} does (Exim's few functions the module
// calls are stood in for here) and
//   start MODE N: forks N children that each make one sluice_rcpt and one
//     sluice_data call and exit; prints their mean CPU and minor page
//     faults (wait4). MODE: "child" (each child loads the module, as in
//     an Exim daemon without preloading), "preload" (this process loads it
//     first, bound at once, as LD_PRELOAD with LD_BIND_NOW=1; set
//     SLUICE_EXIM_CONFIG too for the daemon's reading of the config).
//   messages N: one process, N messages (RCPT and DATA) from 100 senders;
//     prints microseconds and page faults per message after the first.
// Usage: exim_module_cost MODULE CONFIG BODY_FILE start|messages MODE|N [N]
// (benchmarks/exim_module_cost.sh builds and runs it.)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef unsigned char uschar;
static const char* g_body = "";

// Exim's functions the module calls.
void* store_get_3(int n, const void* taint, const char* file, int line) {
  (void)taint, (void)file, (void)line;
  return malloc((size_t)n);
}
void log_write(unsigned selector, int flags, const char* format, ...) {
  (void)selector, (void)flags, (void)format;
}
uschar* expand_string(uschar* s) {  // the spool's -D file; no headers
  return (uschar*)(strstr((char*)s, "spool_directory") != NULL ? g_body : "");
}

typedef int (*DlFunc)(uschar**, int, uschar**);

static void Message(void* module, const char* config, int i) {
  DlFunc rcpt = (DlFunc)dlsym(module, "sluice_rcpt");
  DlFunc data = (DlFunc)dlsym(module, "sluice_data");
  char sender[64], txn[32];
  snprintf(sender, sizeof sender, "s%d@b.example", i % 100);
  snprintf(txn, sizeof txn, "t%d", i);
  uschar* yield;
  uschar* argv[8] = {(uschar*)config,
                     (uschar*)txn,
                     (uschar*)"127.0.0.1",
                     (uschar*)"",
                     (uschar*)sender,
                     (uschar*)"r@remote.example",
                     NULL,
                     NULL};
  rcpt(&yield, 6, argv);
  argv[5] = (uschar*)"300";  // size, recipients, script
  argv[6] = (uschar*)"1";
  argv[7] = (uschar*)"";
  data(&yield, 8, argv);
}

static double NowUs(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static long Faults(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return r.ru_minflt;
}

int main(int argc, char** argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s MODULE CONFIG BODY_FILE start child|preload N | messages N\n",
            argv[0]);
    return 2;
  }
  const char* path = argv[1];
  const char* config = argv[2];
  g_body = argv[3];
  if (strcmp(argv[4], "start") == 0 && argc >= 7) {
    const int preload = strcmp(argv[5], "preload") == 0;
    const int n = atoi(argv[6]);
    void* module = preload ? dlopen(path, RTLD_NOW) : NULL;
    if (preload && module == NULL) return fprintf(stderr, "%s\n", dlerror()), 1;
    double cpu = 0;
    long faults = 0;
    for (int i = 0; i < n; ++i) {
      pid_t pid = fork();
      if (pid == 0) {
        void* m = dlopen(path, RTLD_LAZY);  // as Exim's ${dlfunc}
        if (m == NULL) _exit(1);
        Message(m, config, i);
        exit(0);  // as Exim: the libraries' destructors run
      }
      int status;
      struct rusage ru;
      if (wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child failed\n");
        return 1;
      }
      cpu += ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
             ru.ru_stime.tv_usec;
      faults += ru.ru_minflt;
    }
    printf("start %s%s: %.0f us CPU, %ld page faults per process (%d processes)\n", argv[5],
           preload && getenv("SLUICE_EXIM_CONFIG") != NULL ? " + config" : "", cpu / n, faults / n,
           n);
    return 0;
  }
  if (strcmp(argv[4], "messages") == 0) {
    const int n = atoi(argv[5]);
    void* module = dlopen(path, RTLD_NOW);
    if (module == NULL) return fprintf(stderr, "%s\n", dlerror()), 1;
    Message(module, config, 0);  // opens the engine
    const double t0 = NowUs();
    const long f0 = Faults();
    for (int i = 1; i <= n; ++i) Message(module, config, i);
    printf("messages: %d in one process, 100 senders: %.1f us, %.2f page faults per message\n", n,
           (NowUs() - t0) / n, (double)(Faults() - f0) / n);
    return 0;
  }
  fprintf(stderr, "unknown command %s\n", argv[4]);
  return 2;
}
