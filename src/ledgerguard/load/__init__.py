"""Load generation for the transaction API: realistic bodies (`generator`), a cheap keep-alive
HTTP client (`client`), closed/open-loop runs (`runner`) and their results (`report`),
percentiles (`stats`), the live view (`display`) and where to send it (`target`); `bench/` holds
the benchmark commands."""
