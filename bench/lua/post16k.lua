-- wrk script: POST a 16 KiB body, which the bench app echoes back.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.body = string.rep("k", 16 * 1024)
