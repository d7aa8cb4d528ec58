// name: gene_refseq_proteins
// params: gene="672"
// answers: the RefSeq proteins of a gene (gene_protein_refseq)
MATCH (g:gene {uid: $gene})-[:gene_protein_refseq]->(p:protein)
RETURN g.uid AS gene, g.name AS gene_name, p.uid AS protein, p.accession AS accession,
       p.name AS protein_name
ORDER BY protein
