/*
 * Benchmark worker on libgearman (Debian's libgearman-dev, 1.1.x).
 *
 * Serial by default: one connection and one job at a time, the way a
 * libgearman worker runs. With --threads N it runs N threads, each with its
 * own gearman_worker_st and connection, as a pool for I/O-bound jobs.
 *
 * The handler either returns the payload reversed (--mode echo) or waits
 * --sleep-ms milliseconds with usleep() and returns the payload (--mode sleep).
 * On the first job the worker prints "FIRST <seconds>" with CLOCK_MONOTONIC,
 * the clock Python's time.monotonic() reads on Linux, so the driver can time
 * a drain from its first job. It runs until it is killed.
 */
#include <libgearman/gearman.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct options {
    const char *host;
    in_port_t port;
    const char *function;
    int sleep_mode;
    useconds_t sleep_us;
    int threads;
};

static struct options opts = {"127.0.0.1", 4730, "bench", 0, 0, 1};
static atomic_int first_job_seen;

static void report_first_job(void) {
    if (atomic_exchange(&first_job_seen, 1) == 0) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        printf("FIRST %.6f\n", (double)now.tv_sec + (double)now.tv_nsec / 1e9);
        fflush(stdout);
    }
}

static void *handle_job(gearman_job_st *job, void *context, size_t *result_size,
                        gearman_return_t *ret_ptr) {
    (void)context;
    report_first_job();
    const char *payload = gearman_job_workload(job);
    size_t size = gearman_job_workload_size(job);
    /* libgearman frees the result with free(); malloc(0) may return NULL. */
    char *result = malloc(size ? size : 1);
    if (result == NULL) {
        *ret_ptr = GEARMAN_WORK_FAIL;
        return NULL;
    }
    if (opts.sleep_mode) {
        usleep(opts.sleep_us);
        memcpy(result, payload, size);
    } else {
        for (size_t i = 0; i < size; i++) {
            result[i] = payload[size - 1 - i];
        }
    }
    *result_size = size;
    *ret_ptr = GEARMAN_SUCCESS;
    return result;
}

static void *serve(void *unused) {
    (void)unused;
    gearman_worker_st *worker = gearman_worker_create(NULL);
    if (worker == NULL) {
        fprintf(stderr, "gearman_worker_create failed\n");
        exit(1);
    }
    if (gearman_worker_add_server(worker, opts.host, opts.port) != GEARMAN_SUCCESS ||
        gearman_worker_add_function(worker, opts.function, 0, handle_job, NULL) !=
            GEARMAN_SUCCESS) {
        fprintf(stderr, "worker setup failed: %s\n", gearman_worker_error(worker));
        exit(1);
    }
    for (;;) {
        gearman_return_t ret = gearman_worker_work(worker);
        if (ret != GEARMAN_SUCCESS) {
            fprintf(stderr, "gearman_worker_work failed: %s\n", gearman_worker_error(worker));
            exit(1);
        }
    }
    return NULL;
}

static void usage(const char *program) {
    fprintf(stderr,
            "usage: %s --host HOST --port PORT --function NAME [--mode echo|sleep] "
            "[--sleep-ms MS] [--threads N]\n",
            program);
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage(argv[0]);
        }
        const char *name = argv[i];
        const char *value = argv[++i];
        if (strcmp(name, "--host") == 0) {
            opts.host = value;
        } else if (strcmp(name, "--port") == 0) {
            opts.port = (in_port_t)atoi(value);
        } else if (strcmp(name, "--function") == 0) {
            opts.function = value;
        } else if (strcmp(name, "--mode") == 0) {
            opts.sleep_mode = strcmp(value, "sleep") == 0;
        } else if (strcmp(name, "--sleep-ms") == 0) {
            opts.sleep_us = (useconds_t)(atof(value) * 1000.0);
        } else if (strcmp(name, "--threads") == 0) {
            opts.threads = atoi(value);
        } else {
            usage(argv[0]);
        }
    }
    if (opts.threads < 1) {
        usage(argv[0]);
    }
    if (opts.threads == 1) {
        serve(NULL);
        return 0;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* Small stacks, so a pool of 1000 threads stays cheap. */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int i = 0; i < opts.threads; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, serve, NULL) != 0) {
            fprintf(stderr, "pthread_create failed at thread %d\n", i);
            return 1;
        }
    }
    for (;;) {
        pause();
    }
}
