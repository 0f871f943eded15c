/*
 * Benchmark client on libgearman: foreground round trips, timed one by one.
 *
 * --concurrency C threads, each with its own gearman_client_st (and so its
 * own connection), share --requests N foreground jobs and submit them one
 * at a time with gearman_client_do(). Each thread first sends --warmup jobs
 * that are not timed, and timing starts when all threads have done so. The
 * program prints one line per timed job with its round trip in microseconds,
 * then "FAILED <count>".
 */
#include <libgearman/gearman.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct options {
    const char *host;
    in_port_t port;
    const char *function;
    int requests;
    int concurrency;
    int warmup;
    size_t size;
    int timeout_ms;
};

static struct options opts = {"127.0.0.1", 4730, "bench", 1000, 1, 20, 100, 10000};
static double *latencies_us;
static atomic_int next_index;
static atomic_int failures;
static char *payload;
static pthread_barrier_t warmed_up;

static double now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e6 + (double)now.tv_nsec / 1e3;
}

static int round_trip(gearman_client_st *client) {
    size_t result_size = 0;
    gearman_return_t ret;
    void *result =
        gearman_client_do(client, opts.function, NULL, payload, opts.size, &result_size, &ret);
    free(result);
    return ret == GEARMAN_SUCCESS;
}

static void *submit(void *share) {
    int count = *(int *)share;
    gearman_client_st *client = gearman_client_create(NULL);
    if (client == NULL ||
        gearman_client_add_server(client, opts.host, opts.port) != GEARMAN_SUCCESS) {
        fprintf(stderr, "client setup failed\n");
        exit(1);
    }
    gearman_client_set_timeout(client, opts.timeout_ms);
    for (int i = 0; i < opts.warmup; i++) {
        if (!round_trip(client)) {
            atomic_fetch_add(&failures, 1);
        }
    }
    /* Timing starts once every thread is connected and warmed up. */
    pthread_barrier_wait(&warmed_up);
    for (int i = 0; i < count; i++) {
        double started = now_us();
        int ok = round_trip(client);
        double elapsed = now_us() - started;
        if (!ok) {
            atomic_fetch_add(&failures, 1);
            continue;
        }
        latencies_us[atomic_fetch_add(&next_index, 1)] = elapsed;
    }
    gearman_client_free(client);
    return NULL;
}

static void usage(const char *program) {
    fprintf(stderr,
            "usage: %s --host HOST --port PORT --function NAME [--requests N] "
            "[--concurrency C] [--warmup N] [--size BYTES] [--timeout-ms MS]\n",
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
        } else if (strcmp(name, "--requests") == 0) {
            opts.requests = atoi(value);
        } else if (strcmp(name, "--concurrency") == 0) {
            opts.concurrency = atoi(value);
        } else if (strcmp(name, "--warmup") == 0) {
            opts.warmup = atoi(value);
        } else if (strcmp(name, "--size") == 0) {
            opts.size = (size_t)atol(value);
        } else if (strcmp(name, "--timeout-ms") == 0) {
            opts.timeout_ms = atoi(value);
        } else {
            usage(argv[0]);
        }
    }
    if (opts.requests < 1 || opts.concurrency < 1) {
        usage(argv[0]);
    }
    payload = malloc(opts.size ? opts.size : 1);
    latencies_us = calloc((size_t)opts.requests, sizeof(double));
    int *shares = calloc((size_t)opts.concurrency, sizeof(int));
    pthread_t *threads = calloc((size_t)opts.concurrency, sizeof(pthread_t));
    if (payload == NULL || latencies_us == NULL || shares == NULL || threads == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < opts.size; i++) {
        payload[i] = (char)('a' + i % 26);
    }
    pthread_barrier_init(&warmed_up, NULL, (unsigned)opts.concurrency);
    for (int i = 0; i < opts.concurrency; i++) {
        shares[i] = opts.requests / opts.concurrency + (i < opts.requests % opts.concurrency);
        if (pthread_create(&threads[i], NULL, submit, &shares[i]) != 0) {
            fprintf(stderr, "pthread_create failed at thread %d\n", i);
            return 1;
        }
    }
    for (int i = 0; i < opts.concurrency; i++) {
        pthread_join(threads[i], NULL);
    }
    int timed = atomic_load(&next_index);
    for (int i = 0; i < timed; i++) {
        printf("%.1f\n", latencies_us[i]);
    }
    printf("FAILED %d\n", atomic_load(&failures));
    return 0;
}
