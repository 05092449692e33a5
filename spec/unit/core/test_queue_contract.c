/* test_queue_contract.c - the in-memory backend against the contract every
 * queue backend keeps (queue_contract.h), opened both by its spec and by
 * its ops, the way a durable or shared backend's test will run it. */
#include "check.h"
#include "queue_contract.h"

static queue *open_by_spec(void *arg, const struct queue_config *cfg)
{
    char err[256];
    queue *q = queue_open(arg, cfg, err, sizeof err);
    if (!q)
        fprintf(stderr, "queue_open: %s\n", err);
    return q;
}

static queue *open_by_ops(void *arg, const struct queue_config *cfg)
{
    char err[256];
    queue *q = queue_open_ops(arg, "", cfg, err, sizeof err);
    if (!q)
        fprintf(stderr, "queue_open_ops: %s\n", err);
    return q;
}

/* A backend that forgets one rule: an ack of a lease no longer held
 * succeeds. The contract must catch it, or it catches nothing. */
static struct queue_ops forgetful;

static int forgetful_ack(void *b, uint64_t lease, int keep)
{
    queue_mem_ops.ack(b, lease, keep);
    return 0;
}

static void test_contract_fails_a_broken_backend(void)
{
    forgetful = queue_mem_ops;
    forgetful.name = "forgetful";
    forgetful.ack = forgetful_ack;
    struct contract broken = {open_by_ops, &forgetful, "forgetful (expected to fail)"};
    int passed = check_passed, failed = check_failed;
    queue_contract_run(&broken);
    int caught = check_failed - failed;
    check_passed = passed;
    check_failed = failed;
    CHECK(caught >= 3); /* double ack, ack after retry, ack after release */
}

int main(void)
{
    struct contract by_spec = {open_by_spec, (void *)"memory", "memory"};
    struct contract by_ops = {open_by_ops, (void *)&queue_mem_ops, "memory ops"};
    queue_contract_run(&by_spec);
    queue_contract_run(&by_ops);
    test_contract_fails_a_broken_backend();
    return check_done();
}
