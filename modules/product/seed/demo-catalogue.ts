import type { NewProduct } from '../stores/store.ts';

/** Fixed ids, so seeding twice inserts nothing new. */
const demoId = (n: number) => `64d3a0${n.toString(16).padStart(18, '0')}`;

/** Rupiah to minor units (IDR has two decimal places in ISO 4217): Rp 15.000 → 1500000. */
const rp = (rupiah: number) => rupiah * 100;

type Item = [name: string, rupiah: number, stock: number, description: string];

const CATALOGUE: Record<string, Item[]> = {
  'makanan-minuman': [
    ['Kopi Gayo Arabika 250 g', 85_000, 120, 'Biji kopi arabika dari dataran tinggi Gayo, sangrai medium.'],
    ['Teh Melati Tubruk 100 g', 18_500, 200, 'Teh hijau wangi melati untuk diseduh tubruk.'],
    ['Sambal Roa Manado 200 g', 45_000, 80, 'Sambal ikan roa asap, pedas gurih khas Manado.'],
    ['Keripik Tempe Malang 250 g', 22_000, 150, 'Keripik tempe renyah dengan bumbu bawang.'],
    ['Rendang Daging Kemasan 500 g', 135_000, 40, 'Rendang daging sapi siap saji, tahan tanpa pengawet.'],
    ['Gula Aren Cair 500 ml', 38_000, 90, 'Gula aren murni dari pohon enau, cocok untuk kopi susu.'],
  ],
  elektronik: [
    ['Power Bank 20.000 mAh', 299_000, 60, 'Dua port USB-C, pengisian cepat 22,5 W.'],
    ['Earphone Nirkabel TWS', 449_000, 45, 'Bluetooth 5.3, baterai hingga 30 jam dengan casing.'],
    ['Kipas Angin Meja 12 inci', 275_000, 30, 'Tiga kecepatan, kepala bisa berputar.'],
    ['Rice Cooker 1,8 L', 389_000, 25, 'Penanak nasi digital dengan fungsi penghangat.'],
    ['Lampu LED 12 W (isi 4)', 99_000, 100, 'Lampu hemat energi, cahaya putih 6500 K.'],
    ['Kabel Data USB-C 1 m', 49_000, 250, 'Kabel nilon anti kusut, mendukung 60 W.'],
  ],
  fashion: [
    ['Kemeja Batik Parang Lengan Panjang', 325_000, 35, 'Batik cap motif parang, katun primisima.'],
    ['Kain Tenun Ikat Sumba', 1_250_000, 8, 'Tenun ikat tangan dari Sumba Timur, pewarna alami.'],
    ['Sarung Tenun Samarinda', 210_000, 40, 'Sarung sutra campuran, motif kotak klasik.'],
    ['Sandal Kulit Garut', 185_000, 55, 'Sandal kulit sapi asli buatan pengrajin Garut.'],
    ['Kaos Polos Katun Combed 30s', 65_000, 300, 'Kaos dasar yang adem, tersedia berbagai warna.'],
    ['Tas Anyaman Rotan', 275_000, 20, 'Tas bahu anyaman rotan dari Lombok.'],
  ],
  'rumah-tangga': [
    ['Cobek Batu Gunung Merapi', 120_000, 30, 'Cobek dan ulekan dari batu andesit Merapi.'],
    ['Panci Presto 8 L', 459_000, 15, 'Panci tekanan tinggi untuk mengempukkan daging.'],
    ['Tikar Pandan 120 × 180 cm', 150_000, 25, 'Tikar anyaman daun pandan, ringan dan sejuk.'],
    ['Set Gelas Kaca (isi 6)', 89_000, 70, 'Gelas kaca bening 300 ml, aman untuk air panas.'],
    ['Sapu Ijuk Premium', 45_000, 90, 'Sapu ijuk dengan gagang kayu.'],
    ['Rak Piring Stainless 2 Susun', 235_000, 18, 'Rak piring tahan karat dengan tatakan air.'],
  ],
  kecantikan: [
    ['Lulur Mandi Rempah 250 g', 55_000, 110, 'Lulur tradisional dengan kunyit dan beras.'],
    ['Minyak Kemiri Asli 100 ml', 42_000, 95, 'Minyak kemiri untuk perawatan rambut.'],
    ['Sabun Sereh Wangi Batang', 19_000, 220, 'Sabun alami dengan minyak atsiri sereh.'],
    ['Masker Wajah Bengkoang', 35_000, 130, 'Masker bubuk bengkoang untuk kulit cerah.'],
    ['Minyak Kayu Putih 60 ml', 27_500, 180, 'Minyak kayu putih murni dari Pulau Buru.'],
    ['Parfum Melati Roll-on 10 ml', 75_000, 60, 'Wewangian melati lembut, bebas alkohol.'],
  ],
  olahraga: [
    ['Raket Bulu Tangkis Karbon', 550_000, 20, 'Rangka karbon ringan 84 g, senar terpasang.'],
    ['Kok Bulu Angsa (isi 12)', 110_000, 75, 'Kok turnamen dengan bulu angsa pilihan.'],
    ['Bola Sepak Ukuran 5', 250_000, 40, 'Bola jahitan mesin untuk lapangan rumput.'],
    ['Matras Yoga 6 mm', 175_000, 35, 'Matras TPE anti selip dengan tali pembawa.'],
    ['Sepatu Lari Ringan', 699_000, 25, 'Sol empuk dan bagian atas jaring yang bernapas.'],
    ['Botol Minum 1 L', 85_000, 140, 'Botol tritan bebas BPA dengan penanda waktu.'],
  ],
};

export const DEMO_CATALOGUE: (NewProduct & { id: string })[] = Object.entries(CATALOGUE).flatMap(
  ([category, items], c) =>
    items.map(([name, rupiah, stock, description], i) => ({
      id: demoId(c * 100 + i + 1),
      name,
      description,
      price: rp(rupiah),
      stock,
      category,
      imageUrl: null,
    })),
);
