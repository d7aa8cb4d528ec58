// name: links_per_linkname
// params:
// answers: how many links the store holds per link name and pair of databases
MATCH (a)-[r]->(b)
RETURN type(r) AS linkname, labels(a)[0] AS dbfrom, labels(b)[0] AS dbto, count(*) AS links
ORDER BY linkname, dbfrom, dbto
