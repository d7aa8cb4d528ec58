// name: nucleotide_genes
// params: nuccore=""
// answers: the genes of a nucleotide record, linked either way (nuccore_gene, gene_nuccore*); every nuccore record when empty
MATCH (n:nuccore)-[r]-(g:gene)
WHERE ($nuccore = '' OR n.uid = $nuccore)
  AND (label(r) = 'nuccore_gene' OR label(r) STARTS WITH 'gene_nuccore')
RETURN DISTINCT n.uid AS nuccore, n.accession AS accession, g.uid AS gene, g.name AS gene_name
ORDER BY nuccore, gene
